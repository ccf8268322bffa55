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
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer

from processors.incidents.lifecycle import on_alert
from processors.incidents.routing import route
from processors.incidents.state import GroupState
from schemas import Alert, encode
from schemas.config import load_config
from streams.admin import create_topics
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import start_agents
from tests.processor_support import kill9

CONFIG = Path("examples/config/tocsin.yaml")
N = 20_000


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


def _lag(settings: KafkaSettings, catalog: Catalog, group: str, topics: list[str]) -> int:
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    from confluent_kafka import TopicPartition

    behind = 0
    for topic in topics:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in meta.partitions]
        for tp in c.committed(tps, timeout=10):
            _, high = c.get_watermark_offsets(tp, timeout=10)
            behind += max(0, high - max(tp.offset, 0))
    c.close()
    return behind


def _end_to_end(settings: KafkaSettings, catalog: Catalog, tmp: Path, workers: int) -> float:
    cfg = tmp / "config.yaml"
    cfg.write_text(CONFIG.read_text().replace("timeout: 5m", "timeout: 1h"))
    procs = [start_agents(settings, cfg, tmp / f"w{i}.log") for i in range(workers)]
    try:
        time.sleep(12)  # join and settle the group before the clock starts
        p = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
        for a in _alerts(N):
            p.produce(catalog.name("alerts"), key=a.fingerprint.encode(), value=encode(a))
        p.flush(60)
        started = time.monotonic()
        group = f"{settings.topic_prefix}tocsin-agents"
        topics = [catalog.name("alerts"), catalog.name("incident-work")]
        while time.monotonic() - started < 300:
            if _lag(settings, catalog, group, topics) == 0:
                break
            time.sleep(0.5)
        return N / (time.monotonic() - started)
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
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for workers in (1, 2):
            s = KafkaSettings(bootstrap_servers=bootstrap, partitions=6,
                              topic_prefix=f"ba{uuid.uuid4().hex[:6]}.")  # fmt: skip
            create_topics(make_admin(s), Catalog(s))
            results[workers] = _end_to_end(s, Catalog(s), Path(d), workers)
        s = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bl{uuid.uuid4().hex[:6]}.")
        create_topics(make_admin(s), Catalog(s))
        lats = _latency(s, Catalog(s), Path(d))
    p50 = statistics.median(lats) * 1000 if lats else float("nan")
    p99 = lats[max(0, int(len(lats) * 0.99) - 1)] * 1000 if lats else float("nan")
    print(f"machine: {os.cpu_count()} cores; {N:,} transitions, 50 services x 20 hosts; "
          "critical (group_wait 0)")  # fmt: skip
    print(f"| {'measure':48} | {'result':>12} | {'target':>12} |")
    print(f"|{'-' * 50}|{'-' * 14}|{'-' * 14}|")
    print(f"| {'pure core, in process (transitions/s)':48} | {core:>12,.0f} | {'':>12} |")
    print(f"| {'faust agents, 1 worker (transitions/s)':48} | {results[1]:>12,.0f} | {'':>12} |")
    print(f"| {'faust agents, 2 workers (transitions/s)':48} | {results[2]:>12,.0f} | "
          f"{'>= 20,000':>12} |")  # fmt: skip
    print(f"| {'alert -> first Notification p50 (ms)':48} | {p50:>12,.1f} | {'':>12} |")
    print(f"| {'alert -> first Notification p99 (ms)':48} | {p99:>12,.1f} | {'< 1,000':>12} |")
    print("rerun: uv run python -m benchmarks agents")
    return 0
