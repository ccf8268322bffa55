"""Stand-ins for a librdkafka consumer stuck after a broker restart: the first one made
fails every request ("broker transport failure"), or answers but stays out of its
group; its successors work."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException


class DeafThenWorking:
    made: list[DeafThenWorking] = []
    heard = threading.Event()  # a consumer's request was answered

    @staticmethod
    def reset() -> None:
        DeafThenWorking.made = []
        DeafThenWorking.heard.clear()

    def __init__(self, *_: Any, **__: Any) -> None:
        self.stuck = not DeafThenWorking.made
        self.subscribed: list[str] = []
        self.closed = False
        DeafThenWorking.made.append(self)

    def subscribe(self, topics: list[str], **_: Any) -> None:
        self.subscribed = topics

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        return []

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        if self.stuck:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
        DeafThenWorking.heard.set()
        return _metadata(topic)

    def assignment(self) -> list[Any]:
        return []

    def memberid(self) -> str | None:
        return None if self.stuck else "member-1"

    def close(self) -> None:
        self.closed = True


class GrouplessThenWorking(DeafThenWorking):
    """The first one hears the broker but never rejoins its group (no member id)."""

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        if not self.stuck:
            DeafThenWorking.heard.set()
        return _metadata(topic)


def _metadata(topic: str) -> SimpleNamespace:
    return SimpleNamespace(topics={topic: SimpleNamespace(error=None)})


# a test run once with each way of being stuck, as `stuck`
each_stuck_consumer = pytest.mark.parametrize(
    "stuck", [DeafThenWorking, GrouplessThenWorking], ids=["deaf", "out-of-its-group"]
)
