"""The gateway's Kafka writer on the real broker: a write returns once Kafka acknowledged
every record of it, with the delivery reports served on the event loop that writes."""

from __future__ import annotations

import asyncio
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from streams.catalog import Catalog
from streams.gateway.writer import KafkaWriter, Record
from streams.kafka import make_producer
from streams.settings import KafkaSettings


def _records(topic: str, n: int, tag: str) -> list[Record]:
    return [(topic, f"k{i % 7}".encode(), f"{tag}-{i}".encode()) for i in range(n)]


def _read_all(s: KafkaSettings, topic: str, want: int, timeout: float = 60.0) -> list[bytes]:
    c = Consumer(s.client_config() | {"group.id": f"w-{uuid.uuid4().hex[:6]}",
                                      "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False})  # fmt: skip
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            got += [m.value() or b"" for m in c.consume(500, timeout=0.5) if not m.error()]
        return got
    finally:
        c.close()


def test_each_write_returns_once_its_records_are_acknowledged_on_every_loop_it_serves(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    topic = topics.name("alerts")
    # started outside any event loop: the first write's loop serves its reports
    writer = KafkaWriter(make_producer(kafka_settings, **{"linger.ms": 2}), ack_timeout=30).start()

    async def write(tag: str) -> int:
        # concurrent requests, as the gateway's clients send them
        await asyncio.gather(*(writer.write(_records(topic, 64, f"{tag}{r}")) for r in range(8)))
        return len(writer.producer)

    try:
        # a second event loop (a writer that outlives its loop) is served as well
        outstanding = [asyncio.run(write("first")), asyncio.run(write("second"))]
    finally:
        writer.close()
    assert outstanding == [0, 0], "a write returned before Kafka acknowledged its records"
    got = _read_all(kafka_settings, topic, 2 * 8 * 64)
    assert sorted(got) == sorted(
        f"{tag}{r}-{i}".encode() for tag in ("first", "second") for r in range(8) for i in range(64)
    )
