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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer

from harness.workers import kill9
from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

BINARY = shutil.which("prometheus")
TOKEN = "bench-prometheus-token"
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


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bootstrap() -> str:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    return bootstrap


def _start(name: str, args: list[str], env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    log = (tmp / f"{name}.log").open("ab")
    cmd = [sys.executable, "-m", "streams.cli.main", "run", *args]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _ready(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


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


def _run(bootstrap: str, mode: str) -> dict[str, float]:
    assert BINARY is not None
    settings = KafkaSettings(bootstrap_servers=bootstrap,
                             topic_prefix=f"prom{uuid.uuid4().hex[:6]}.")  # fmt: skip
    catalog = Catalog(settings)
    create_topics(make_admin(settings), catalog)
    paged: list[float] = []

    def stamp(method: str, args: dict[str, Any]) -> None:
        if method == "chat.postMessage" and MARK in str(args.get("text") or ""):
            paged.append(time.time())

    slack = FakeSlack(on_call=stamp)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with tempfile.TemporaryDirectory() as d, serve(slack.app()) as slack_url:
            tmp = Path(d)
            (tmp / "probe.yaml").write_text(PROBE.format(mode=mode, mark=MARK))
            port = _port()
            gateway = f"http://127.0.0.1:{port}"
            env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": bootstrap,
                   "TOCSIN_TOPIC_PREFIX": settings.topic_prefix, "TOCSIN_LOG_FORMAT": "json",
                   "TOCSIN_SLACK_BASE_URL": f"{slack_url}/api/", "TOCSIN_LOG_LEVEL": "warning",
                   "TOCSIN_GATEWAY_TOKENS": TOKEN}  # fmt: skip
            procs["gateway"] = _start("gateway", ["gateway", "--host", "127.0.0.1", "--port",
                                                  str(port)], env, tmp)  # fmt: skip
            procs["processor"] = _start("processor", [
                "processor", "--rules", str(tmp / "probe.yaml"), "--rules", "rules/default.yaml",
                "--instance-id", f"prom-{mode}", "--health-port", "0"], env, tmp)  # fmt: skip
            agents = ["agents", "--config", "examples/config", "--tick-every", "0.2",
                      "--health-port", "0", "--datadir", str(tmp / "faust")]  # fmt: skip
            procs["agents"] = _start("agents", agents, env, tmp)
            procs["notifier"] = _start("notifier", ["notifier", "--health-port", "0"], env, tmp)
            if not _ready(gateway, time.monotonic() + 60):
                raise RuntimeError((tmp / "gateway.log").read_text()[-2000:])
            time.sleep(10)  # the workers join their groups (as bench_e2e waits for them)
            prom_port = _port()
            (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
remote_write:
  - url: {gateway}/api/v1/write
    authorization: {{credentials: {TOKEN}}}
""")
            started = time.time()
            procs["prometheus"] = subprocess.Popen(
                [BINARY, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=(tmp / "prometheus.log").open("ab"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + 150
            while not paged and time.monotonic() < deadline:
                time.sleep(0.1)
            if not paged:
                logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}"
                                 for p in sorted(tmp.glob("*.log")))  # fmt: skip
                raise RuntimeError(f"no page within 150 s ({mode}):\n{logs}")
            first_page = paged[0]
            first_sample, alert_at = _first_up(settings, catalog)
    finally:
        for proc in procs.values():
            kill9(proc)
        delete_prefixed(make_admin(settings), settings.topic_prefix)
    return {
        "from_start": first_page - started,
        "from_sample": first_page - first_sample,
        "alert_from_sample": alert_at - first_sample,
        "sample_after_start": first_sample - started,
    }


def main() -> int:
    if BINARY is None:
        print("prometheus is not installed (make peers): nothing measured")
        return 1
    bootstrap = _bootstrap()
    runs = int(os.environ.get("TOCSIN_BENCH_RUNS", "2"))
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for _ in range(runs):  # alternated, so both modes see the same machine load
        for mode in MODES:
            results[mode].append(_run(bootstrap, mode))
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
