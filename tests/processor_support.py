"""Helpers shared by the processor's integration and fault tests. Starting, watching and
killing workers lives in harness.workers (the benchmarks use it too); the fault tests
import those helpers from here."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from harness.settled import settled_end
from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from processors.rules.engine import RuleEngine
from schemas import encode
from schemas.rules import RuleFile
from streams.catalog import Catalog
from streams.demo.workload import Fleet
from streams.kafka import make_producer
from streams.processor.feed import feed_log, feed_metric
from streams.settings import KafkaSettings

__all__ = ["START", "health_port", "kill9", "produce_fleet", "read_all",
           "reference_transitions", "start_worker", "wait_for_lag_zero"]  # fmt: skip

START = datetime(2026, 1, 1, tzinfo=UTC)


def produce_fleet(settings: KafkaSettings, catalog: Catalog, minutes: float) -> int:
    producer = make_producer(settings)
    n = 0
    for tick in Fleet(START).ticks(minutes):
        for m in tick.metrics:
            producer.produce(catalog.name("metrics"), key=m.series_key().encode(), value=encode(m))
        for rec in tick.logs:
            producer.produce(
                catalog.name("logs"), key=rec.labels["service"].encode(), value=encode(rec)
            )
        n += len(tick.metrics) + len(tick.logs)
        producer.poll(0)
    assert producer.flush(60) == 0
    return n


def read_all(settings: KafkaSettings, topic: str) -> dict[int, list[bytes]]:
    """Every committed record of a topic, by partition, in offset order."""
    c = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": "reader-unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            # the next watermark query waits behind a fetch parked at the broker
            "fetch.wait.max.ms": 10,
        }
    )
    meta = c.list_topics(topic, timeout=10).topics[topic]
    out: dict[int, list[bytes]] = defaultdict(list)
    for p in meta.partitions:
        # a killed worker's open transaction holds back what was committed after it
        low, high = settled_end(c, settings, topic, p)
        if high <= low:
            continue
        c.assign([TopicPartition(topic, p, low)])
        pos = low
        deadline = time.monotonic() + 30
        while pos < high and time.monotonic() < deadline:
            # no more than are left: consume(n) waits for n records or its timeout
            for m in c.consume(min(5000, high - pos), timeout=0.5):
                if not m.error():
                    out[p].append(m.value() or b"")
            pos = c.position([TopicPartition(topic, p)])[0].offset
        c.unassign()
    c.close()
    return out


def reference_transitions(pack: RuleFile, settings: KafkaSettings, catalog: Catalog) -> list[bytes]:
    """What an uninterrupted run produces: one engine per input partition, in offset order."""
    out: list[bytes] = []
    skew = pack.settings.max_future_skew
    for topic, feed in ((catalog.name("metrics"), feed_metric), (catalog.name("logs"), feed_log)):
        for _, records in sorted(read_all(settings, topic).items()):
            engine = RuleEngine(pack.rules, pack.settings)
            for raw in records:
                feed(engine, raw, time.time(), skew)
            out += [encode(a) for a in engine.advance()]
    return out
