"""The projector gets a new consumer when the old one stops hearing the broker.

After a broker restart the projector's consumer was seen leaving the group on its
session timeout and never coming back: the store, and the console and API that read
it, stayed as they were before the outage. A consumer that fails every request stands
in for it here; its successor works."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.settings import KafkaSettings
from streams.store import projector as projector_module
from streams.store.db import StoreSettings, open_engine
from streams.store.projector import Projector


class Consumer:
    made: list[Consumer] = []
    heard = threading.Event()  # a consumer's request was answered

    def __init__(self) -> None:
        self.stuck = not Consumer.made  # the first never recovers; its successor works
        self.subscribed: list[str] = []
        self.closed = False
        Consumer.made.append(self)

    def subscribe(self, topics: list[str], **_: Any) -> None:
        self.subscribed = topics

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def list_topics(self, topic: str, timeout: float) -> None:
        if self.stuck:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
        Consumer.heard.set()

    def assignment(self) -> list[Any]:
        return []

    def close(self) -> None:
        self.closed = True


def test_a_consumer_that_stops_hearing_the_broker_is_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Consumer.made = []
    Consumer.heard.clear()
    monkeypatch.setattr(projector_module, "make_consumer", lambda *a, **k: Consumer())
    monkeypatch.setattr(projector_module, "SEEN_EVERY_S", 0.0)
    engine = open_engine(StoreSettings(path=str(tmp_path / "store.sqlite3")))
    projector = Projector(KafkaSettings(), engine)
    projector.renewal.after_s = 0.05
    stop = threading.Event()
    running = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    running.start()
    try:
        assert Consumer.heard.wait(10), "no consumer heard the broker"
    finally:
        stop.set()
        running.join(10)
    first, second = Consumer.made[:2]
    assert first.closed and second.subscribed == projector.topics.names
    engine.dispose()
