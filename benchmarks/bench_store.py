"""The incident store: projector throughput, API list latency at 100,000 incidents, and
the time from a command accepted by the API to the row that shows it.

1. projector: incident histories made by the real incident core (open, page, ack,
   note, resolve: ~12 records per incident, ~5 of them ledger entries) are written to
   the topics, then one projector reads them into SQLite and into PostgreSQL (a
   throwaway server from Debian's package); records/s and ledger events/s, end to end
   from Kafka to committed rows.
2. API list: PostgreSQL filled with 100,000 incidents and 1,000,000 ledger entries
   (rows written directly), then `GET /api/v1/incidents` through the real aiohttp API
   with a mix of filters, sorts, free text and cursor pages, one client; p50/p99.
3. command to row: the real agents (a worker process), the projector and the API; an
   alert opens an incident, then notes are added through the API one after another;
   from the 202 to the note's row in the store; p50/p99.
Rerun: `uv run python -m benchmarks store` (TOCSIN_BENCH_STORE_INCIDENTS=100000,
TOCSIN_BENCH_STORE_HISTORY=4000 incidents for the projector, TOCSIN_BENCH_PG_PORT=15449,
TOCSIN_BENCH_STORE_PARTS=projector,list,command to run only some).
The projector's figures carry its CPU per ledger event (the benchmark process, which is
the projector and its Kafka client; and the PostgreSQL server's): on a shared, loaded
machine the wall clock says more about the neighbours than about the projector.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import Engine, func, select

from harness.incidents import EXAMPLE_CONFIG, history, produce, topic_of
from harness.postgres import LocalPostgres
from harness.workers import kill9, start_agents
from schemas import Alert, encode
from schemas.config import load_config
from streams.admin import create_topics, delete_prefixed
from streams.api.app import Api
from streams.api.auth import digest
from streams.api.server import application
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable, make_admin, make_producer
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.projector import Projector

INCIDENTS = int(os.environ.get("TOCSIN_BENCH_STORE_INCIDENTS", "100000"))
HISTORY = int(os.environ.get("TOCSIN_BENCH_STORE_HISTORY", "4000"))
PG_PORT = int(os.environ.get("TOCSIN_BENCH_PG_PORT", "15449"))
# which parts run: all three unless a comma-separated subset is given
PARTS = os.environ.get("TOCSIN_BENCH_STORE_PARTS", "projector,list,command").split(",")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "tsn_bench_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
                         partitions=3)  # fmt: skip


def _server_cpu(pg: LocalPostgres | None) -> float:
    """CPU-seconds the PostgreSQL server has used: the postmaster, the backends it
    reaped, and the ones alive now (0 without a server)."""
    if pg is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    root = int((pg.data / "postmaster.pid").read_text().split()[0])

    def stat(pid: int) -> list[str]:
        # fields after the command name, which may hold spaces: state is [0], ppid [1]
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    total = sum(int(x) for x in stat(root)[11:15])
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = stat(int(d.name))
            except OSError:
                continue
            if int(f[1]) == root:
                total += int(f[11]) + int(f[12])
    return total / tick


@dataclass
class Rate:
    records_s: float
    ledger_s: float
    cpu_us: float  # CPU of the projector's process per ledger event
    server_cpu_us: float  # CPU of the database server per ledger event (PostgreSQL)


def projector_rate(bootstrap: str, engine: Engine, effects: list[Any],
                   pg: LocalPostgres | None = None) -> Rate:  # fmt: skip
    settings = _settings(bootstrap)
    create_topics(make_admin(settings), Catalog(settings))
    try:
        produce(settings, effects)
        ledger = sum(1 for e in effects if topic_of(e) == "incident-events")
        migrate(engine)
        p = Projector(settings, engine)
        stop = threading.Event()
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu(pg)
        t = threading.Thread(target=p.run, args=(stop,), daemon=True)
        t.start()
        # (the count is the bench's, in this process too: a cheap one, not too often)
        while _count(engine, tables.timeline) < ledger:
            time.sleep(0.1)
        took = time.perf_counter() - started
        cpu, server = time.process_time() - cpu, _server_cpu(pg) - server
        stop.set()
        t.join(30)
        return Rate(len(effects) / took, ledger / took, cpu / ledger * 1e6,
                    server / ledger * 1e6)  # fmt: skip
    finally:
        delete_prefixed(make_admin(settings), settings.topic_prefix)


def fill(engine: Engine, n: int) -> None:
    """n incidents, 10 ledger entries and one member each, written directly."""
    migrate(engine)
    rnd = random.Random(3)
    services = ["search", "checkout", "db", "auth", "cache", "catalog", "payments"]
    statuses = ["resolved"] * 8 + ["acknowledged", "triggered"]
    chunk = 5000
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            incs, evs, mems = [], [], []
            for i in range(start, min(n, start + chunk)):
                iid = f"inc-{i:012x}-{i:010x}"
                opened = T0 + timedelta(seconds=26 * i)
                svc = services[i % len(services)]
                status = statuses[rnd.randrange(10)]
                acked = opened + timedelta(seconds=rnd.randrange(30, 900))
                labels = {"host": f"web-{i % 5000:04d}", "service": svc, "alertname": "cpu"}
                incs.append({
                    "incident_id": iid, "tenant": "default", "group_key": f"{svc}|{i}",
                    "version": 5, "status": status, "title": f"cpu high on web-{i % 5000:04d}",
                    "severity": "critical", "priority": f"P{1 + i % 4}", "service": svc,
                    "team": "platform" if i % 2 else "payments", "labels": labels,
                    "opened_at": opened,
                    "acknowledged_at": acked if status != "triggered" else None,
                    "resolved_at": acked + timedelta(minutes=20) if status == "resolved" else None,
                    "updated_at": acked, "assignee": None, "escalation_policy": "p",
                    "escalation_level": 0, "snoozed_until": None, "flapping": False,
                    "notified_targets": ["slack:#c"], "storm": None, "alert_count": 1,
                    "search": f"cpu high on web-{i % 5000:04d} host=web-{i % 5000:04d} "
                              f"service={svc}",
                })  # fmt: skip
                mems.append({"incident_id": iid, "fingerprint": f"fp{i}", "rule": "cpu",
                             "status": "firing", "severity": "critical", "labels": labels,
                             "value": 97.0, "threshold": 90.0, "first_seen": opened,
                             "last_seen": opened, "repeats": 3})  # fmt: skip
                for seq in range(1, 11):
                    evs.append({"incident_id": iid, "seq": seq, "tenant": "default",
                                "kind": "note", "at": opened + timedelta(seconds=seq),
                                "actor": "tocsin", "message": f"entry {seq}",
                                "details": {}})  # fmt: skip
            conn.execute(tables.incidents.insert(), incs)
            conn.execute(tables.members.insert(), mems)
            conn.execute(tables.timeline.insert(), evs)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _config(tmp: Path) -> list[Path]:
    (tmp / "tokens.yaml").write_text(
        f"api_tokens:\n  - {{user: alice, role: admin, sha256: {digest(TOKEN)}}}\n"
    )
    return [EXAMPLE_CONFIG, tmp / "tokens.yaml"]


async def _serve(api: Api) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(application(api))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def list_latency(bootstrap: str, engine: Engine, tmp: Path, requests: int = 400
                       ) -> tuple[float, float]:  # fmt: skip
    api = Api(_settings(bootstrap), engine, load_config(_config(tmp)))
    runner, url = await _serve(api)
    queries: list[dict[str, Any]] = [
        {}, {"status": "triggered"}, {"status": "acknowledged,triggered", "priority": "P1"},
        {"service": "checkout", "sort": "-updated_at"}, {"team": "platform", "sort": "priority"},
        {"q": "web-0042"}, {"since": (T0 + timedelta(days=3)).isoformat(),
                            "until": (T0 + timedelta(days=4)).isoformat()},
        {"limit": 200},
    ]  # fmt: skip
    took: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=AUTH) as c:
            cursor = None
            for i in range(requests):
                params = dict(queries[i % len(queries)])
                if i % len(queries) == 0 and cursor:
                    params["cursor"] = cursor  # a deeper page of the default list
                t = time.perf_counter()
                r = await c.get("/api/v1/incidents", params=params)
                took.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                if i % len(queries) == 0:
                    cursor = r.json()["next_cursor"]
    finally:
        await runner.cleanup()
    return _pct(took, 50) * 1000, _pct(took, 99) * 1000


async def command_to_row(bootstrap: str, tmp: Path, samples: int = 40) -> tuple[float, float]:
    settings = _settings(bootstrap)
    catalog = Catalog(settings)
    create_topics(make_admin(settings), catalog)
    engine = open_engine(StoreSettings(path=str(tmp / "c2r.sqlite3")))
    migrate(engine)
    agents = start_agents(settings, EXAMPLE_CONFIG / "tocsin.yaml", tmp / "agents.log")
    projector = Projector(settings, engine)
    stop = threading.Event()
    worker = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    worker.start()
    api = Api(settings, engine, load_config(_config(tmp)))
    runner, url = await _serve(api)
    took: list[float] = []
    try:
        now = datetime.now(UTC)
        alert = Alert(fingerprint="b1", status="firing", rule="disk_full", severity="critical",
                      labels={"alertname": "disk_full", "service": "db", "host": "db-1"},
                      starts_at=now)  # fmt: skip
        p = make_producer(settings)
        p.produce(catalog.name("alerts"), encode(alert), key=b"b1")
        p.flush(10)
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=AUTH) as c:
            deadline = time.monotonic() + 120
            items: list[Any] = []
            while not items:
                assert time.monotonic() < deadline, "no incident"
                items = (await c.get("/api/v1/incidents")).json()["items"]
                await asyncio.sleep(0.1)
            iid = items[0]["incident_id"]
            for i in range(samples):
                text = f"note {i}"
                sent = time.perf_counter()  # the 202 itself is part of the figure
                r = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": text})
                assert r.status_code == 202
                while not _has_note(engine, iid, text):  # noqa: ASYNC110 (polls the store)
                    await asyncio.sleep(0.005)
                took.append(time.perf_counter() - sent)
    finally:
        await runner.cleanup()
        stop.set()
        worker.join(30)
        kill9(agents)
        delete_prefixed(make_admin(settings), settings.topic_prefix)
    return _pct(took, 50) * 1000, _pct(took, 99) * 1000


def _has_note(engine: Engine, iid: str, text: str) -> bool:
    t = tables.timeline.c
    with engine.connect() as conn:
        return conn.execute(select(t.seq).where(t.incident_id == iid, t.message == text)
                            ).first() is not None  # fmt: skip


def main() -> int:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    started: LocalBroker | None = None
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        started = LocalBroker(port=port_of(bootstrap))
        started.start()
    pg = LocalPostgres(PG_PORT).start()
    rows: list[tuple[str, str, str]] = []
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if "projector" in PARTS:
                rows += projector_rows(bootstrap, pg, tmp)
            if "list" in PARTS:
                rows.append(list_row(bootstrap, pg, tmp))
            if "command" in PARTS:
                c50, c99 = asyncio.run(command_to_row(bootstrap, tmp))
                rows.append(("command sent to the API (202) -> row in the store (agents, "
                             "projector, SQLite)", f"p99 {c99:.0f} ms",
                             f"p50 {c50:.0f} ms, 40 notes"))  # fmt: skip
    finally:
        pg.stop()
        if started is not None:
            started.stop()
    print(f"\n{'what':<80} {'figure':<28} detail")
    for what, fig, detail in rows:
        print(f"{what:<80} {fig:<28} {detail}")
    print("\nrerun: uv run python -m benchmarks store  (on this machine: 2 shared cores)")
    return 0


def projector_rows(bootstrap: str, pg: LocalPostgres, tmp: Path) -> list[tuple[str, str, str]]:
    rows = []
    effects = list(history(HISTORY, T0))
    for kind, store in (("SQLite", StoreSettings(path=str(tmp / "p.sqlite3"))),
                        ("PostgreSQL", StoreSettings(dsn=pg.new_database("proj")))):  # type: ignore[arg-type]  # fmt: skip
        engine = open_engine(store)
        r = projector_rate(bootstrap, engine, effects, pg if kind == "PostgreSQL" else None)
        engine.dispose()
        server = f", server {r.server_cpu_us:.0f} us" if r.server_cpu_us else ""
        rows.append((f"projector into {kind}", f"{r.ledger_s:,.0f} ledger events/s",
                     f"{r.records_s:,.0f} records/s, {len(effects):,} records; CPU per "
                     f"ledger event: projector {r.cpu_us:.0f} us{server}"))  # fmt: skip
        print(rows[-1])
    return rows


def list_row(bootstrap: str, pg: LocalPostgres, tmp: Path) -> tuple[str, str, str]:
    engine = open_engine(StoreSettings(dsn=pg.new_database("list")))  # type: ignore[arg-type]
    t = time.perf_counter()
    fill(engine, INCIDENTS)
    filled = time.perf_counter() - t
    p50, p99 = asyncio.run(list_latency(bootstrap, engine, tmp))
    engine.dispose()
    row = (f"API incident list, {INCIDENTS:,} incidents / {INCIDENTS * 10:,} "
           "ledger rows, PostgreSQL", f"p99 {p99:.1f} ms",
           f"p50 {p50:.1f} ms; filled in {filled:.0f}s")  # fmt: skip
    print(row)
    return row
