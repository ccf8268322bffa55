"""Status pages: how long the API worker takes to draw a page over a store with a busy
tenant's 90 days, and the same over HTTP.

SQLite (the embedded default) filled directly with INCIDENTS incidents of one tenant over
the last 90 days across 10 services (a tenth of them still open, P1-P5 mixed), as many
of another tenant, and an update with two audiences for every fifth incident; a
status.yaml of 10 components and a public and a private page. Then (1) `page_view` and the
HTML rendering in process, (2) `GET /status/<tenant>/staff` through the real aiohttp API,
one client, 200 requests back to back (a page is drawn at most every 2 s for all its
readers: the first request draws it, the others are served the drawn page); p50/p99 ms.
Rerun: `uv run python -m benchmarks status` (TOCSIN_BENCH_STATUS_INCIDENTS=20000).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiohttp import web

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from schemas.status import StatusConfig
from streams.api.app import Api
from streams.api.auth import digest
from streams.api.server import application
from streams.settings import KafkaSettings
from streams.status import render
from streams.status.store import page_view
from streams.store import tables
from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.status_tables import status_updates

INCIDENTS = int(os.environ.get("TOCSIN_BENCH_STATUS_INCIDENTS", "20000"))
SERVICES = [f"svc-{i}" for i in range(10)]
TOKEN = "tsn_bench_status_page"
STATUS = StatusConfig.model_validate({
    "components": [{"id": s, "name": s.upper(), "group": f"g{i % 3}", "services": [s]}
                   for i, s in enumerate(SERVICES)],
    "pages": [{"id": "public", "audience": "public", "title": "Bench status"},
              {"id": "staff", "audience": "private", "title": "Bench staff",
               "tokens": [digest(TOKEN)]}],
})  # fmt: skip


def _fill(engine: object, now: datetime) -> None:
    rnd = random.Random(7)
    rows, ups = [], []
    for tenant in ("bench", "other"):
        for n in range(INCIDENTS):
            opened = now - timedelta(seconds=rnd.uniform(0, 89 * 86400))
            is_open = n % 10 == 0
            iid = f"{tenant}-{n}"
            rows.append({
                "incident_id": iid, "tenant": tenant, "group_key": f"{tenant}/{n}", "version": 1,
                "status": "triggered" if is_open else "resolved", "title": f"t {n}",
                "severity": "critical", "priority": f"P{rnd.randint(1, 5)}",
                "service": rnd.choice(SERVICES), "team": "t", "labels": {"host": f"h{n}"},
                "opened_at": opened, "acknowledged_at": None,
                "resolved_at": None if is_open else opened + timedelta(minutes=rnd.uniform(1, 300)),
                "updated_at": opened, "assignee": None, "escalation_policy": None,
                "escalation_level": 0, "snoozed_until": None, "flapping": False,
                "notified_targets": [], "storm": None, "alert_count": 1, "search": "",
            })  # fmt: skip
            if n % 5 == 0:
                ups.append({"update_id": f"u-{iid}", "tenant": tenant, "incident_id": iid,
                            "status": "identified", "message": "m" * 200,
                            "audiences": ["public", "private"], "title": "", "components": [],
                            "author": "a", "at": opened + timedelta(minutes=1)})  # fmt: skip
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(tables.incidents.insert(), rows)
        conn.execute(status_updates.insert(), ups)


def _pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100)[int(p) - 1] if len(xs) > 1 else xs[0]


async def _http(api: Api, rounds: int) -> list[float]:
    runner = web.AppRunner(application(api, {"bench": STATUS}))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    took = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as c:
            for _ in range(rounds):
                t = time.perf_counter()
                r = await c.get("/status/bench/staff")
                took.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
    finally:
        await runner.cleanup()
    return took


def main() -> int:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(StoreSettings(path=str(Path(tmp) / "s.sqlite3")))
        migrate(engine)
        _fill(engine, now)
        page = STATUS.page("staff")
        assert page is not None
        took = []
        for _ in range(20):
            t = time.perf_counter()
            with engine.connect() as conn:
                view = page_view(conn, "bench", STATUS, page, now)
            render.html(view, "/status/bench/staff")
            took.append((time.perf_counter() - t) * 1000)
        api = Api(KafkaSettings(), engine, load_config([EXAMPLE_CONFIG]))
        http = asyncio.run(_http(api, 200))
        engine.dispose()
    print(f"{'what':<44}{'p50 ms':>10}{'p99 ms':>10}")
    print(
        f"{'drawing the page (store + HTML), SQLite':<44}{_pct(took, 50):>10.1f}"
        f"{_pct(took, 99):>10.1f}"
    )
    label = "GET /status/bench/staff, 200 in a row"
    print(f"{label:<44}{_pct(http, 50):>10.1f}{_pct(http, 99):>10.1f}")
    print(
        f"(a tenant of {INCIDENTS:,} incidents in 90 days, 10 components, "
        f"{INCIDENTS // 5:,} updates; another tenant as large; "
        f"{len(view.past)} past incidents on the page)"
    )
    return 0
