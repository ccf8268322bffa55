"""The expiry worker gets a new consumer when the old one stops hearing the broker.

Its consumer's partitions are where the leases come from: one that fails every request,
or answers but is in no group, reads no re-send, so the worker would go on expiring
alerts that are still being sent. A stand-in for such a consumer is replaced here; its
successor works, and the worker is ready again."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from streams.expiry import worker as expiry_module
from streams.expiry.worker import ExpiryWorker
from streams.settings import KafkaSettings
from tests.unit.deaf_consumer import DeafThenWorking, each_stuck_consumer


class _Idle:
    def __init__(self, *_: Any, **__: Any) -> None: ...

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return 0


@each_stuck_consumer
def test_a_consumer_that_stops_hearing_the_broker_is_replaced(
    monkeypatch: pytest.MonkeyPatch, stuck: type[DeafThenWorking]
) -> None:
    DeafThenWorking.reset()
    monkeypatch.setattr(expiry_module, "make_consumer", stuck)
    monkeypatch.setattr(expiry_module, "make_producer", _Idle)
    worker = ExpiryWorker(KafkaSettings())
    worker.hearing.every_s, worker.hearing.renewal.after_s = 0.0, 0.05
    assert worker.hearing.membership is not None
    worker.hearing.membership.grace_s = 0.05
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    try:
        assert DeafThenWorking.heard.wait(10), "no consumer heard the broker"
        first, second = DeafThenWorking.made[:2]
        assert first.closed and second.subscribed == [worker.topic]
    finally:
        stop.set()
        running.join(10)
    # heard again: ready, and nothing left for the stuck-client guard
    ready, checks = worker.health.ready()
    assert ready, checks
    assert not worker.kafka_wait.stalled
