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
            positions = self.consumer.position(self.consumer.assignment())
        except KafkaException:
            return
        for tp in positions:
            # a partition nothing was read from has no position. committed() would be a
            # broker round trip that, while a transaction holds offsets, blocks until its
            # timeout (a 2 s stall every report in the processor): leave it unreported
            if tp.offset < 0:
                continue
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0:
                held.add((tp.topic, tp.partition))
                self.gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - tp.offset)
                )
        # a partition that moved to another worker is that worker's to report: a stale
        # value here would hold a lag alert open for a partition nobody here consumes
        for topic, partition in self._reported - held:
            self.gauge.remove(topic, str(partition))
        self._reported = held
