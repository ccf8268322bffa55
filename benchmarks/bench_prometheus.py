"""Time to the first page on real Prometheus data, per-series vs partition watermarks.

A real Prometheus (Debian's package, installed by `make peers`) scrapes itself every
5 s and remote-writes its own metrics (its default queue settings) to the gateway
(`tocsin run gateway`); the processor runs the default rule pack plus a `for: 0`
probe rule on `up`, which holds from the first sample; the agents (example config:
critical alerts page without group_wait) and the notifier page a local fake Slack.
Everything is the real worker processes on the real broker, with tocsin's default
settings (`allowed_lateness: 30s`) but for the watermark mode under test.

Per run it prints the time from Prometheus' start, and from the first `up` sample's
timestamp, to the first Slack call for the probe, and when the alert was committed.
Rerun: `uv run python -m benchmarks prometheus` (TOCSIN_BENCH_RUNS runs per mode).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import datetime

import orjson
from confluent_kafka import Consumer

from benchmarks.prometheus_stack import PROMETHEUS, bootstrap, stack
from streams.catalog import Catalog
from streams.settings import KafkaSettings

MARK = "prometheus-probe:"
SCRAPE_S = 5
MODES = ("series", "partition")
PROBE = """\
settings: {{allowed_lateness: 30s, watermark: {mode}}}
rules:
  - name: prometheus_probe
    description: Prometheus' own target is up (true from its first scrape).
    signal: {{kind: metric, metric: up}}
    aggregation: max
    window: {{size: 5s}}
    condition: {{op: ">", threshold: 0.5}}
    group_by: [instance]
    severity: critical
    summary: "{mark} {{instance}} up"
"""
SCRAPE = """\
  - job_name: prometheus
    static_configs: [{targets: ["{prometheus}"]}]"""


def _first_up(settings: KafkaSettings, catalog: Catalog) -> tuple[float, float]:
    """The first `up` sample's timestamp on `metrics`, and when the probe's firing
    alert was written to `alerts` (the broker's timestamp), both epoch seconds."""
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                  "group.id": f"bench-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "enable.auto.commit": False})  # fmt: skip
    c.subscribe([catalog.name("metrics"), catalog.name("alerts")])
    first_sample = alert_at = float("nan")
    deadline = time.monotonic() + 60
    idle_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - idle_since < 5:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        idle_since = time.monotonic()
        doc = orjson.loads(m.value() or b"{}")
        if m.topic() == catalog.name("metrics") and doc.get("name") == "up":
            t = datetime.fromisoformat(doc["time"]).timestamp()
            first_sample = t if first_sample != first_sample else min(first_sample, t)
        elif doc.get("rule") == "prometheus_probe" and doc.get("status") == "firing":
            at = m.timestamp()[1] / 1000.0
            alert_at = at if alert_at != alert_at else min(alert_at, at)
    c.close()
    return first_sample, alert_at


def _run(servers: str, mode: str) -> dict[str, float]:
    with stack(servers, PROBE.format(mode=mode, mark=MARK), f"prom-{mode}") as st:
        started = time.time()
        st.prometheus(SCRAPE_S, SCRAPE)

        def paged() -> list[float]:
            return [at for at, method, args in st.slack_calls if method == "chat.postMessage"
                    and MARK in str(args.get("text") or "")]  # fmt: skip

        deadline = time.monotonic() + 150
        while not paged() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not paged():
            raise RuntimeError(f"no page within 150 s ({mode}):\n{st.logs()}")
        first_page = paged()[0]
        first_sample, alert_at = _first_up(st.settings, st.catalog)
    return {
        "from_start": first_page - started,
        "from_sample": first_page - first_sample,
        "alert_from_sample": alert_at - first_sample,
        "sample_after_start": first_sample - started,
    }


def main() -> int:
    if PROMETHEUS is None:
        print("prometheus is not installed (make peers): nothing measured")
        return 1
    servers = bootstrap()
    runs = int(os.environ.get("TOCSIN_BENCH_RUNS", "2"))
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for _ in range(runs):  # alternated, so both modes see the same machine load
        for mode in MODES:
            results[mode].append(_run(servers, mode))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores shared with other work (load average {load}); "
        f"Prometheus scrapes itself every {SCRAPE_S} s, remote write with its default "
        f"queue; tocsin's default settings (allowed_lateness 30s); {runs} run(s) per mode"
    )
    print(
        f"| {'watermark':9} | {'first page after Prometheus start':>34} | "
        f"{'after the first sample':>22} | {'alert committed after sample':>28} |"
    )
    print(f"|{'-' * 11}|{'-' * 36}|{'-' * 24}|{'-' * 30}|")
    for mode in MODES:
        rs = results[mode]

        def cell(key: str, rs: list[dict[str, float]] = rs) -> str:
            xs = [r[key] for r in rs]
            each = " / ".join(f"{x:.1f}" for x in xs)
            return f"{statistics.median(xs):.1f} s ({each})" if len(xs) > 1 else f"{each} s"

        print(
            f"| {mode:9} | {cell('from_start'):>34} | {cell('from_sample'):>22} | "
            f"{cell('alert_from_sample'):>28} |"
        )
    print(
        "(median, then each run; the first sample is Prometheus' first scrape, "
        f"{statistics.median(r['sample_after_start'] for m in MODES for r in results[m]):.1f}"
        " s after its start)"
    )
    print("rerun: uv run python -m benchmarks prometheus")
    return 0
