"""The gateway's views (silences, firing alerts, the incident index behind Slack's
buttons) follow their topics with group-less consumers. One that stops hearing the
broker is replaced where it had read to: records written after it went deaf reach the
view, and none is handed to the view twice."""

from __future__ import annotations

import time

import pytest
import structlog

from streams.catalog import Catalog
from streams.gateway import follower as follower_module
from streams.gateway.follower import TopicFollower
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.goes_deaf import GoesDeaf


def test_a_view_whose_consumer_stops_hearing_the_broker_gets_what_came_after(
    kafka_settings: KafkaSettings, topics: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    GoesDeaf.reset()
    monkeypatch.setattr(follower_module, "make_consumer", GoesDeaf)
    topic = topics.name("incidents")
    seen: list[bytes | None] = []
    view = TopicFollower(kafka_settings, topic, lambda key, _: seen.append(key), "test-view")
    view.hearing.every_s, view.hearing.renewal.after_s = 0.0, 0.2
    producer = make_producer(kafka_settings)

    def write(key: bytes) -> None:
        producer.produce(topic, key=key, value=b"{}")
        assert producer.flush(10) == 0

    def until(what: str, done: object) -> None:
        deadline = time.monotonic() + 30
        while not done():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    write(b"inc-1")
    with structlog.testing.capture_logs() as logged:
        view.start()
        try:
            until("the first record", lambda: seen == [b"inc-1"])
            GoesDeaf.deaf.set()
            # not before a fetch begun deaf: one begun earlier may still return it
            until("a deaf fetch", lambda: GoesDeaf.made[0].deaf_fetches > 0)
            write(b"inc-2")  # written while the first consumer hears nothing
            until("the record written after it went deaf", lambda: len(seen) >= 2)
        finally:
            view.stop()
    assert seen == [b"inc-1", b"inc-2"], "read on from where the old consumer had read to"
    assert len(GoesDeaf.made) == 2
    assert any(x["event"] == "consumer_replaced" for x in logged)
    assert not view.hearing.wait.stalled
