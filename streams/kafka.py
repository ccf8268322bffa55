"""confluent-kafka clients built from settings, and the Protocol they are coded against.

``confluent_kafka.Message`` cannot be constructed in a test, so code that
handles records takes ``KafkaRecord`` and tests hand in plain objects.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Protocol

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from streams.settings import KafkaSettings


class KafkaRecord(Protocol):
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def error(self) -> Any: ...


def make_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """A producer that is acknowledged only once every in-sync replica has the write."""
    conf = settings.client_config() | {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    conf.update(overrides)
    return Producer(conf)


def make_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    conf = settings.client_config() | {
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }
    conf.update(overrides)
    return Consumer(conf)


def make_admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient(settings.client_config())


def broker_reachable(settings: KafkaSettings, timeout: float = 2.0) -> bool:
    """True when a broker answers a metadata request within ``timeout`` seconds."""
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    try:
        # a refused TCP connect answers at once; librdkafka would retry and log each refusal
        socket.create_connection((host or "127.0.0.1", int(port or 9092)), timeout=timeout).close()
    except OSError:
        return False
    quiet = logging.getLogger("tocsin.rdkafka.probe")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient(settings.client_config() | {"logger": quiet})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> list[bytes]:
    """Every committed record of a topic, partition by partition (for reports and tools)."""
    return [value for _, value in read_topic_keyed(settings, topic, timeout)]


def read_topic_keyed(settings: KafkaSettings, topic: str, timeout: float = 30.0
                     ) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """(key, value) of every committed record of a topic, partition by partition."""
    from confluent_kafka import TopicPartition

    c = Consumer(settings.client_config() | {"group.id": "tocsin-reader",
                                             "isolation.level": "read_committed",
                                             "enable.auto.commit": False})  # fmt: skip
    out: list[tuple[bytes, bytes]] = []
    try:
        meta = c.list_topics(topic, timeout=timeout).topics[topic]
        for p in sorted(meta.partitions):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            pos, deadline = low, time.monotonic() + timeout
            while pos < high and time.monotonic() < deadline:
                out += [(m.key() or b"", m.value() or b"")
                        for m in c.consume(5000, timeout=0.5) if not m.error()]  # fmt: skip
                pos = c.position([TopicPartition(topic, p)])[0].offset
            c.unassign()
    finally:
        c.close()
    return out
