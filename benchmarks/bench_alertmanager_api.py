"""Alertmanager API v2 on the gateway: Prometheus-sized alert batches accepted into
Kafka per second, and the time from Prometheus' POST of a new critical alert to its
first page (group_wait 0 for critical alerts) through warm agents.

Throughput: one gateway process (`tocsin run gateway`), 8 clients posting 64-alert
batches (Prometheus' default `max_batch` to an Alertmanager) to POST /api/v2/alerts for
20 s, every request answered after Kafka acknowledged it (acks=all). The bodies hold
12,800 distinct alerts, as a Prometheus re-sending that many firing alerts would. The
gateway's own CPU time is measured too: on a machine shared with other work, alerts per
CPU-second of the gateway says what one core does where the wall-clock rate cannot.

First page: the gateway and the agents (`tocsin run agents`, examples/config) as their
own processes; once the agents have caught up with the alerts the throughput run left,
20 new critical alerts, one at a time; the time from the POST to the `trigger`
notification on `notifications` (the outbox the notifier delivers from).
Rerun: `uv run python -m benchmarks alertmanager_api`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from benchmarks.faults.harness import committed_lag
from harness.workers import kill9, start_agents
from schemas import Notification, decode
from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

BATCH = 64
BODIES = 200
CLIENTS = 8
SECONDS = 20.0
PAGES = 20
TOKEN = "bench-token"
CONFIG = Path("examples/config/tocsin.yaml")


def _bodies() -> list[bytes]:
    now = datetime.now(UTC)
    starts, ends = (
        (now - timedelta(minutes=10)).isoformat(),
        (now + timedelta(minutes=4)).isoformat(),
    )
    out = []
    for b in range(BODIES):
        alerts = [{"labels": {"alertname": f"HighLatency{i % 8}", "job": "node",
                              "instance": f"web-{b * BATCH + i}:9100", "severity": "warning",
                              "service": "search"},
                   "annotations": {"summary": "p99 latency above 2s",
                                   "runbook_url": "https://runbooks.example/latency"},
                   "startsAt": starts, "endsAt": ends,
                   "generatorURL": "http://prometheus:9090/graph?g0.expr=latency"}
                  for i in range(BATCH)]  # fmt: skip
        out.append(orjson.dumps(alerts))
    return out


async def _load(url: str, bodies: list[bytes]) -> tuple[int, list[float], dict[int, int]]:
    """aiohttp's client: httpx costs the shared cores more than the gateway's parsing."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    accepted = 0
    stop_at = time.monotonic() + SECONDS
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal accepted
        i = k
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            async with session.post(f"{url}/api/v2/alerts", data=bodies[i % len(bodies)],
                                    headers=headers) as r:  # fmt: skip
                await r.read()
            latencies.append(time.perf_counter() - started)
            codes[r.status] = codes.get(r.status, 0) + 1
            if r.status == 200:
                accepted += BATCH
            i += CLIENTS

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session, k) for k in range(CLIENTS)))
    return accepted, latencies, codes


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_gateway(s: KafkaSettings, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": s.bootstrap_servers,
           "TOCSIN_TOPIC_PREFIX": s.topic_prefix, "TOCSIN_PARTITIONS": str(s.partitions),
           "TOCSIN_GATEWAY_TOKENS": TOKEN, "TOCSIN_LOG_LEVEL": "warning",
           # one credential posts everything: measure the gateway, not its rate limit
           "TOCSIN_GATEWAY_RATE_LIMIT": "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "streams.cli.main", "run", "gateway", "--host", "127.0.0.1",
           "--port", str(port), "--config", str(CONFIG)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    kill9(proc)
    raise RuntimeError(f"gateway did not become ready: {log.read_text()[-2000:]}")


def _tail(s: KafkaSettings, topic: str) -> Consumer:
    c = Consumer(s.client_config() | {"group.id": f"bench-{uuid.uuid4().hex[:6]}",
                                      "enable.auto.commit": False})  # fmt: skip
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    return c


def _page_after(c: Consumer, url: str, name: str, timeout: float = 60.0) -> float:
    now = datetime.now(UTC)
    alert = [{"labels": {"alertname": name, "severity": "critical", "service": "search"},
              "annotations": {"summary": f"{name} fires"}, "startsAt": now.isoformat(),
              "endsAt": (now + timedelta(minutes=4)).isoformat()}]  # fmt: skip
    started = time.perf_counter()
    r = httpx.post(f"{url}/api/v2/alerts", json=alert, timeout=30,
                   headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    if r.status_code != 200:
        raise RuntimeError(f"POST answered {r.status_code}: {r.text[:300]}")
    while time.perf_counter() - started < timeout:
        for m in c.consume(100, timeout=0.02):
            if m.error() or not m.value():
                continue
            n = decode(Notification, m.value() or b"")
            if n.kind == "trigger" and n.labels.get("alertname") == name:
                return time.perf_counter() - started
    raise RuntimeError(f"no page for {name} within {timeout:.0f}s")


def _drained(s: KafkaSettings, timeout: float = 600.0) -> None:
    catalog = Catalog(s)
    groups = {f"{s.topic_prefix}tocsin-agents-router": [catalog.name("alerts")],
              f"{s.topic_prefix}tocsin-agents": [catalog.name("incident-work")]}  # fmt: skip
    deadline = time.monotonic() + timeout
    while any(committed_lag(s, g, t) != 0 for g, t in groups.items()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the agents did not catch up within {timeout:.0f}s")
        time.sleep(0.5)


def _first_pages(s: KafkaSettings, url: str, log: Path) -> list[float]:
    agents = start_agents(s, CONFIG, log)
    tail = _tail(s, Catalog(s).name("notifications"))
    try:
        _page_after(tail, url, "WarmUp", timeout=180)  # the agents joined and work
        # the throughput run left a backlog of alerts: a page timed behind it would
        # measure the backlog, not the path a new alert takes through warm agents
        _drained(s)
        return [_page_after(tail, url, f"NewCritical{i}") for i in range(PAGES)]
    finally:
        tail.close()
        kill9(agents)


def main() -> int:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    s = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"ba{uuid.uuid4().hex[:6]}.")
    create_topics(make_admin(s), Catalog(s))
    try:
        return _report(s)
    finally:
        delete_prefixed(make_admin(s), s.topic_prefix)


def _report(s: KafkaSettings) -> int:
    with tempfile.TemporaryDirectory() as d:
        gw, url = _start_gateway(s, Path(d) / "gateway.log")
        try:
            bodies = _bodies()
            cpu_before = _cpu_seconds(gw.pid)
            accepted, lats, codes = asyncio.run(_load(url, bodies))
            cpu = _cpu_seconds(gw.pid) - cpu_before
            pages = _first_pages(s, url, Path(d) / "agents.log")
        finally:
            kill9(gw)
    lats.sort()
    p50 = lats[len(lats) // 2] * 1000
    p99 = lats[max(0, int(len(lats) * 0.99) - 1)] * 1000
    print(f"machine: {os.cpu_count()} cores shared with the broker, the load generator and "
          f"other work; one gateway process; acks=all")  # fmt: skip
    print(f"| {'measure':58} | {'result':>14} |")
    print(f"|{'-' * 60}|{'-' * 16}|")
    rows = [
        (f"POST /api/v2/alerts, {CLIENTS} clients x {BATCH}-alert batches: alerts/s",
         f"{accepted / SECONDS:,.0f}"),
        ("gateway CPU: alerts per CPU-second (all its threads)", f"{accepted / cpu:,.0f}"),
        ("request latency p50 / p99 (ms)", f"{p50:,.1f} / {p99:,.1f}"),
        ("answers", str(dict(sorted(codes.items())))),
        (f"first page after POST, {PAGES} new critical alerts: p50 (s)",
         f"{statistics.median(pages):.3f}"),
        ("first page after POST: max (s)", f"{max(pages):.3f}"),
    ]  # fmt: skip
    for what, value in rows:
        print(f"| {what:58} | {value:>14} |")
    print("rerun: uv run python -m benchmarks alertmanager_api")
    return 0 if accepted else 1
