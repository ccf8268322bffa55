"""Gateway: accepted samples/s for NDJSON batches on one worker, and request latency,
every request answered only after Kafka acknowledged (acks=all).

The gateway runs as its own process (`tocsin run gateway`) so the load generator does
not share its interpreter; 8 concurrent clients post 500-sample NDJSON batches for
20 s. Rerun: `uv run python -m benchmarks gateway`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

BATCH = 500
CLIENTS = 8
SECONDS = 20.0
TOKEN = "bench-token"


def _batches(n: int) -> list[bytes]:
    # the gateway refuses samples more than 7 days old: the load is dated now
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = []
    for b in range(n):
        lines = (
            orjson.dumps(
                {
                    "name": "http_request_duration_seconds",
                    "value": (i % 97) / 10,
                    "time": stamp,
                    "labels": {"host": f"web-{(b * BATCH + i) % 200}", "route": f"/api/{i % 7}"},
                }
            )
            for i in range(BATCH)
        )
        out.append(b"\n".join(lines))
    return out


async def _load(url: str, bodies: list[bytes]) -> tuple[int, list[float], dict[int, int]]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    accepted = 0
    stop_at = time.monotonic() + SECONDS
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}

    async def client(k: int) -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            i = k
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                r = await c.post("/v1/metrics", content=bodies[i % len(bodies)], headers=headers)
                latencies.append(time.perf_counter() - started)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                if r.status_code == 202:
                    accepted += BATCH
                i += CLIENTS

    await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    return accepted, latencies, codes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    s = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bg{uuid.uuid4().hex[:6]}.")
    create_topics(make_admin(s), Catalog(s))
    try:
        return _report(s)
    finally:
        delete_prefixed(make_admin(s), s.topic_prefix)


def _report(s: KafkaSettings) -> int:
    port = _free_port()
    env = {
        **os.environ,
        "TOCSIN_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "TOCSIN_TOPIC_PREFIX": s.topic_prefix,
        "TOCSIN_GATEWAY_TOKENS": TOKEN,
        # one credential posts everything: measure the gateway, not its per-credential limit
        "TOCSIN_GATEWAY_RATE_LIMIT": "0",
        "TOCSIN_LOG_LEVEL": "warning",
    }
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "gateway.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli.main",
                "run",
                "gateway",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            else:
                print("gateway did not become ready:", log.read_text()[-2000:])
                return 1
            accepted, lats, codes = asyncio.run(_load(url, _batches(40)))
        finally:
            proc.terminate()
            proc.wait(30)
    lats.sort()
    p50 = lats[len(lats) // 2] * 1000
    p99 = lats[max(0, int(len(lats) * 0.99) - 1)] * 1000
    print(
        f"machine: {os.cpu_count()} cores shared with the broker, the load generator and "
        f"other work; {CLIENTS} clients x {BATCH}-sample NDJSON batches for {SECONDS:.0f} s; "
        f"one gateway process; acks=all"
    )
    print(f"| {'measure':44} | {'result':>12} |")
    print(f"|{'-' * 46}|{'-' * 14}|")
    print(f"| {'accepted samples/s (acknowledged by Kafka)':44} | {accepted / SECONDS:>12,.0f} |")
    print(f"| {'requests/s':44} | {len(lats) / SECONDS:>12,.1f} |")
    print(f"| {'request latency p50 (ms)':44} | {p50:>12,.1f} |")
    print(f"| {'request latency p99 (ms)':44} | {p99:>12,.1f} |")
    print(f"| {'answers':44} | {dict(sorted(codes.items()))!s:>12} |")
    print("rerun: uv run python -m benchmarks gateway")
    return 0 if accepted else 1
