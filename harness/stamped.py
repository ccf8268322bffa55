"""Records with their Kafka timestamps, for tests and benchmarks that time a path
(an alert accepted by the gateway -> its page on `notifications`)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.settings import KafkaSettings


def read_stamped(settings: KafkaSettings, topic: str, timeout: float = 30.0
                 ) -> list[tuple[float, bytes, bytes]]:  # fmt: skip
    """(timestamp in seconds, key, value) of every committed record of ``topic``; retried
    while a topic created a moment ago has no leader yet."""
    for _ in range(20):
        try:
            return _read(settings, topic, timeout)
        except KafkaException:
            time.sleep(0.5)
    return _read(settings, topic, timeout)


def _read(settings: KafkaSettings, topic: str, timeout: float) -> list[tuple[float, bytes, bytes]]:
    c = Consumer(settings.client_config() | {"group.id": "tocsin-stamped-reader",
                                             "isolation.level": "read_committed",
                                             "enable.auto.commit": False,
                                             "fetch.wait.max.ms": 10})  # fmt: skip
    out: list[tuple[float, bytes, bytes]] = []
    try:
        meta = c.list_topics(topic, timeout=timeout).topics[topic]
        for p in sorted(meta.partitions):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            pos, deadline = low, time.monotonic() + timeout
            while pos < high and time.monotonic() < deadline:
                for m in c.consume(min(5000, high - pos), timeout=0.5):
                    if not m.error():
                        out.append((m.timestamp()[1] / 1000, m.key() or b"", m.value() or b""))
                pos = c.position([TopicPartition(topic, p)])[0].offset
            c.unassign()
    finally:
        c.close()
    return out
