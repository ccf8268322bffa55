"""The projector gets a new consumer when the old one stops hearing the broker.

After a broker restart the projector's consumer was seen leaving the group on its
session timeout and never coming back: the store, and the console and API that read
it, stayed as they were before the outage. A consumer that fails every request, or one
that answers but is in no group, stands in for it here; its successor works."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from streams.settings import KafkaSettings
from streams.store import projector as projector_module
from streams.store.db import StoreSettings, open_engine
from streams.store.projector import Projector
from tests.unit.deaf_consumer import DeafThenWorking, each_stuck_consumer


@each_stuck_consumer
def test_a_consumer_that_stops_hearing_the_broker_is_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stuck: type[DeafThenWorking]
) -> None:
    DeafThenWorking.reset()
    monkeypatch.setattr(projector_module, "make_consumer", stuck)
    monkeypatch.setattr(projector_module, "SEEN_EVERY_S", 0.0)
    engine = open_engine(StoreSettings(path=str(tmp_path / "store.sqlite3")))
    projector = Projector(KafkaSettings(), engine)
    projector.renewal.after_s = 0.05
    projector.membership.grace_s = 0.05
    stop = threading.Event()
    running = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    running.start()
    try:
        assert DeafThenWorking.heard.wait(10), "no consumer heard the broker"
    finally:
        stop.set()
        running.join(10)
    first, second = DeafThenWorking.made[:2]
    assert first.closed and second.subscribed == projector.topics.names
    # heard again while idle: ready, and nothing left for the stuck-client guard
    assert not projector.kafka_wait.stalled
    engine.dispose()
