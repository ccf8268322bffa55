"""confluent-kafka clients built from settings, and the Protocol they are coded against.

``confluent_kafka.Message`` cannot be constructed in a test, so code that
handles records takes ``KafkaRecord`` and tests hand in plain objects.
"""

from __future__ import annotations

import logging
import socket
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
