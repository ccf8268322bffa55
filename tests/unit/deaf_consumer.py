"""A stand-in for a librdkafka consumer stuck after a broker restart: the first one made
fails every request ("broker transport failure"); its successors work."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException


class DeafThenWorking:
    made: list[DeafThenWorking] = []
    heard = threading.Event()  # a consumer's request was answered

    @classmethod
    def reset(cls) -> None:
        cls.made = []
        cls.heard.clear()

    def __init__(self, *_: Any, **__: Any) -> None:
        self.stuck = not DeafThenWorking.made
        self.subscribed: list[str] = []
        self.closed = False
        DeafThenWorking.made.append(self)

    def subscribe(self, topics: list[str], **_: Any) -> None:
        self.subscribed = topics

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        return []

    def list_topics(self, topic: str, timeout: float) -> None:
        if self.stuck:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
        DeafThenWorking.heard.set()

    def assignment(self) -> list[Any]:
        return []

    def close(self) -> None:
        self.closed = True
