"""Prometheus metrics of a tocsin worker; one registry per process, passed in."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException
from prometheus_client import CollectorRegistry, Counter, Gauge


class WorkerMetrics:
    """Counters every worker kind shares. Workers add their own beside these."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.records_processed = Counter(
            "tocsin_records_processed_total",
            "Records consumed and handled, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tocsin_dead_letters_total",
            "Records sent to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "tocsin_consumer_lag",
            "Records behind the partition's end, per input partition this worker holds.",
            ["topic", "partition"],
            registry=self.registry,
        )


class LagReporter:
    """Sets `tocsin_consumer_lag` for the partitions a confluent-kafka consumer holds, from
    cached watermarks (no broker round trip), at most every `every_s` seconds: position()
    per partition is not free on a hot loop."""

    def __init__(self, consumer: Consumer, gauge: Gauge, every_s: float = 5.0) -> None:
        self.consumer = consumer
        self.gauge = gauge
        self.every_s = every_s
        self._last = 0.0
        self._reported: set[tuple[str, int]] = set()

    def maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        held: set[tuple[str, int]] = set()
        try:
            assigned = self.consumer.assignment()
            positions = self.consumer.position(assigned)
            # a partition nothing was read from yet has no position; a worker stuck
            # before its first record is exactly the lag worth seeing: fall back to the
            # group's committed offset (one round trip, only for those), then the start
            unread = [tp for tp in positions if tp.offset < 0]
            committed = (
                {
                    (tp.topic, tp.partition): tp.offset
                    for tp in self.consumer.committed(unread, timeout=2.0)
                }
                if unread
                else {}
            )
        except KafkaException:
            return
        for tp in positions:
            try:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            pos = tp.offset
            if pos < 0:
                pos = committed.get((tp.topic, tp.partition), -1)
            if pos < 0:
                pos = low
            if pos >= 0 and high >= 0:
                held.add((tp.topic, tp.partition))
                self.gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - pos)
                )
        # a partition that moved to another worker is that worker's to report: a stale
        # value here would hold a lag alert open for a partition nobody here consumes
        for topic, partition in self._reported - held:
            self.gauge.remove(topic, str(partition))
        self._reported = held
