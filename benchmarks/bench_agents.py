"""Incident agents: transitions/s through dedup + grouping + lifecycle, and the time from
an alert transition to its first Notification request.

Rerun: `uv run python -m benchmarks agents`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks.scratch import scratch, topic_count
from harness.workers import kill9, start_agents
from processors.incidents.lifecycle import on_alert
from processors.incidents.routing import route
from processors.incidents.state import GroupState
from schemas import Alert, encode
from schemas.config import load_config
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings

CONFIG = Path("examples/config/tocsin.yaml")
# long enough (~5 s with two workers) that joining the groups and the last commit weigh
# little: at 40,000 transitions a run lasted 2-3 s and single runs differed by half
N = 120_000
RUNS = 3  # two-worker runs: the median, and the range beside it


def _alerts(n: int, services: int = 50) -> list[Alert]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        s, h = i % services, (i // services) % 20
        status = "resolved" if (i // (services * 20)) % 4 == 3 else "firing"
        labels = {"alertname": "cpu", "service": f"svc-{s}", "host": f"h{h}"}
        out.append(Alert(
            fingerprint=f"s{s}h{h}", status=status, rule="cpu",  # type: ignore[arg-type]
            severity="critical", labels=labels, starts_at=now,
            ends_at=now if status == "resolved" else None))  # fmt: skip
    return out


def _core_rate() -> float:
    cfg = load_config([CONFIG])
    alerts = _alerts(N)
    groups: dict[str, GroupState] = {}
    now = datetime.now(UTC)
    started = time.perf_counter()
    for a in alerts:
        r = route(cfg, a.labels)[0]
        key = r.group_key(a.labels)
        g = groups.get(key) or groups.setdefault(key, GroupState(group_key=key, route=r.decision))
        on_alert(g, a, now, cfg)
    return N / (time.perf_counter() - started)


def _lag(settings: KafkaSettings, group: str, topics: list[str]) -> int:
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    behind = 0
    for topic in topics:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in meta.partitions]
        for tp in c.committed(tps, timeout=10):
            _, high = c.get_watermark_offsets(tp, timeout=10)
            behind += max(0, high - max(tp.offset, 0))
    c.close()
    return behind


def _last_write(settings: KafkaSettings, topic: str) -> tuple[float, int]:
    """(time of the newest record, records) of a topic: when the last state was written."""
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "bench-last",
                  "enable.auto.commit": False})  # fmt: skip
    meta = c.list_topics(topic, timeout=10).topics[topic]
    newest, total, tps = 0.0, 0, []
    for p in meta.partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
        if high > low:
            tps.append(TopicPartition(topic, p, high - 1))
    c.assign(tps)
    for _ in range(len(tps)):
        m = c.poll(10)
        if m is not None and not m.error():
            newest = max(newest, m.timestamp()[1] / 1000)
    c.close()
    return newest, total


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process, every thread (librdkafka's and faust's) included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    workers: int
    rate: float  # transitions/s, wall clock: first alert produced -> last state written
    cpu: float  # CPU seconds of the worker processes over the run
    load: tuple[float, float]  # 1-minute load average before and after
    broker_cpu: float  # CPU seconds of the broker over the run (nan: not the local broker)

    @property
    def per_cpu(self) -> float:
        return N / self.cpu if self.cpu else float("nan")


def _broker_cpu(bootstrap: str) -> float:
    status = LocalBroker(port=port_of(bootstrap)).status()
    return _cpu_seconds(status.pid) if status.pid else float("nan")


def _end_to_end(settings: KafkaSettings, catalog: Catalog, tmp: Path, workers: int) -> Run:
    """Alerts already encoded, produced as fast as the client can; the clock stops at the
    broker timestamp of the last group-state write, once every input is committed (the
    router's alerts and decide's incident-work: state written and acknowledged)."""
    cfg = tmp / "config.yaml"
    cfg.write_text(CONFIG.read_text().replace("timeout: 5m", "timeout: 1h"))
    procs = [start_agents(settings, cfg, tmp / f"w{workers}-{i}.log") for i in range(workers)]
    group = f"{settings.topic_prefix}tocsin-agents"
    records = [(a.fingerprint.encode(), encode(a)) for a in _alerts(N)]
    try:
        time.sleep(15)  # join and settle both groups before the clock starts
        load = os.getloadavg()[0]
        cpu0 = sum(_cpu_seconds(p.pid) for p in procs)
        broker0 = _broker_cpu(settings.bootstrap_servers)
        p = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
        started = time.time()
        for key, value in records:
            p.produce(catalog.name("alerts"), key=key, value=value)
            p.poll(0)
        p.flush(60)
        while time.time() - started < 600:
            if (_lag(settings, f"{group}-router", [catalog.name("alerts")]) == 0
                    and _lag(settings, group, [catalog.name("incident-work")]) == 0):  # fmt: skip
                break
            time.sleep(0.2)
        cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu0
        broker = _broker_cpu(settings.bootstrap_servers) - broker0
        last, _ = _last_write(settings, f"{group}-groups-changelog")
        return Run(workers, N / (last - started), cpu, (load, os.getloadavg()[0]), broker)
    finally:
        for proc in procs:
            kill9(proc)


def _latency(settings: KafkaSettings, catalog: Catalog, tmp: Path) -> list[float]:
    cfg = tmp / "lat.yaml"
    cfg.write_text(CONFIG.read_text())
    proc = start_agents(settings, cfg, tmp / "lat.log")
    seen: dict[str, float] = {}
    stop = threading.Event()

    def read() -> None:
        c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "lat",
                      "auto.offset.reset": "earliest"})  # fmt: skip
        c.subscribe([catalog.name("notifications")])
        while not stop.is_set():
            m = c.poll(0.05)
            if m is not None and not m.error():
                doc = orjson.loads(m.value() or b"{}")
                seen.setdefault(doc["labels"]["host"], time.time())
        c.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent: dict[str, float] = {}
    try:
        time.sleep(12)
        p = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 0})
        for i in range(200):
            host = f"lat-{i}"
            a = Alert(fingerprint=host, status="firing", rule="cpu", severity="critical",
                      labels={"alertname": "cpu", "service": "search", "host": host},
                      starts_at=datetime.now(UTC))  # fmt: skip
            sent[host] = time.time()
            p.produce(catalog.name("alerts"), key=host.encode(), value=encode(a))
            p.poll(0)
            time.sleep(0.02)
        p.flush(10)
        time.sleep(3)
    finally:
        stop.set()
        reader.join(5)
        kill9(proc)
    return sorted(seen[h] - sent[h] for h in sent if h in seen)


def main() -> int:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    core = _core_rate()
    topics = topic_count(bootstrap)
    runs: dict[int, list[Run]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as d:
        for workers in [1] + [2] * RUNS:
            with scratch(bootstrap, "ba", partitions=6) as s:
                runs[workers].append(_end_to_end(s, Catalog(s), Path(d), workers))
        with scratch(bootstrap, "bl") as s:
            lats = _latency(s, Catalog(s), Path(d))
    p50 = statistics.median(lats) * 1000 if lats else float("nan")
    p99 = lats[max(0, int(len(lats) * 0.99) - 1)] * 1000 if lats else float("nan")
    print(f"machine: {os.cpu_count()} cores, shared; {N:,} transitions, 50 services x 20 hosts, "
          "critical (group_wait 0); broker on the same machine, "
          f"{topics} topics on it")  # fmt: skip
    print(f"| {'measure':72} | {'result':>12} | {'target':>12} |")
    print(f"|{'-' * 74}|{'-' * 14}|{'-' * 14}|")

    def row(what: str, value: str, target: str = "") -> None:
        print(f"| {what:72} | {value:>12} | {target:>12} |")

    row("pure core, in process (transitions/s)", f"{core:,.0f}")
    for w, done in runs.items():
        name = f"{w} worker{'s' if w > 1 else ''}"
        done = sorted(done, key=lambda r: r.rate)
        r = done[len(done) // 2]  # the median run; its other figures are that run's
        spread = (
            f" (median of {len(done)}: {done[0].rate:,.0f}-{done[-1].rate:,.0f})"
            if len(done) > 1
            else ""
        )
        row(f"agents, {name}: transitions/s (wall clock){spread}", f"{r.rate:,.0f}",
            ">= 20,000" if w == 2 else "")  # fmt: skip
        row(f"agents, {name}: transitions per worker CPU-second", f"{r.per_cpu:,.0f}")
        row(f"agents, {name}: worker CPU-s / wall-s (cores busy)",
            f"{r.cpu * r.rate / N:,.2f}")  # fmt: skip
        row(f"agents, {name}: broker CPU-s / wall-s", f"{r.broker_cpu * r.rate / N:,.2f}")
        row(f"agents, {name}: load average (1 min) before / after",
            f"{r.load[0]:.1f} / {r.load[1]:.1f}")  # fmt: skip
    row("alert -> first Notification p50 (ms), 1 worker", f"{p50:,.1f}")
    row("alert -> first Notification p99 (ms), 1 worker", f"{p99:,.1f}", "< 1,000")
    print("rerun: uv run python -m benchmarks agents")
    return 0
