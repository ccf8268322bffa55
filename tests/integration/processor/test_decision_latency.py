"""How long after the crossing sample a `for: 0` rule's alert is on the `alerts` topic,
through the real worker and broker, with in-order samples and the default settings."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from harness.workers import kill9, start_worker
from schemas import Alert, decode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings

SCRAPE_S = 1.0
HOSTS = ["h1", "h2", "h3"]
# the crossing sample's window ends within 2 s; a scrape later every host has passed
# it. The partition watermark would add the default 30 s allowed_lateness.
BOUND_S = 5.0
PACK = """
rules:
  - name: probe_hot
    signal: {kind: metric, metric: probe}
    aggregation: max
    window: {size: 2s}
    condition: {op: ">", threshold: 90}
    group_by: [host]
"""


def _sample(host: str, value: float, t: float) -> bytes:
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
    return orjson.dumps({"name": "probe", "value": value, "time": at, "labels": {"host": host}})


def _alerts_consumer(settings: KafkaSettings, topic: str) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": "latency-reader-unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    return c


def test_a_for_0_rule_pages_about_one_scrape_after_the_crossing_sample(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(PACK)
    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, rules, log)
    producer = make_producer(kafka_settings)
    alerts = _alerts_consumer(kafka_settings, topics.name("alerts"))
    metrics = topics.name("metrics")
    crossing: float | None = None
    fired: Alert | None = None
    try:
        deadline = time.monotonic() + 180
        started = time.time()
        next_scrape = time.time()
        while fired is None and time.monotonic() < deadline:
            now = time.time()
            if now >= next_scrape:
                # the crossing waits until the worker has had time to join and read
                if (
                    crossing is None
                    and now - started > 20
                    and "partitions_assigned" in (log.read_text())
                ):
                    crossing = now
                hot = crossing is not None
                for host in HOSTS:
                    value = 99.0 if hot and host == "h1" else 10.0
                    producer.produce(metrics, key=host.encode(), value=_sample(host, value, now))
                producer.flush(5)
                next_scrape += SCRAPE_S
            for m in alerts.consume(100, timeout=0.1):
                if m.error():
                    continue
                a = decode(Alert, m.value() or b"")
                if a.rule == "probe_hot" and a.status == "firing":
                    fired = a
                    seen = time.time()
        assert fired is not None, log.read_text()[-3000:]
        assert crossing is not None
        latency = seen - crossing
        assert fired.labels["host"] == "h1"
        assert latency < BOUND_S, f"fired {latency:.1f} s after the crossing sample"
    finally:
        alerts.close()
        kill9(worker)
