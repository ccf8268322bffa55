"""The suppressions follower while its topic cannot be read (not created yet, the broker
away): it keeps trying, says so in readiness and in one log line (not one per try), and
follows the topic once it is there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import structlog

from processors.incidents.suppression import Suppressions
from streams.admin import create_topics
from streams.agents import broadcast
from streams.agents.broadcast import SuppressionFollower, suppression_key
from streams.catalog import Catalog
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.integration.goes_deaf import GoesDeaf


def test_a_missing_topic_is_waited_for_without_leaking_clients(
    kafka_settings: KafkaSettings,
) -> None:
    catalog = Catalog(kafka_settings)
    topic = catalog.name("suppressions")
    sup = Suppressions()
    follower = SuppressionFollower(kafka_settings, topic, 3, sup)

    async def follow_until(done: Callable[[], object], deadline_s: float) -> None:
        task = asyncio.create_task(follower.run(every=0.05, retry_every=0.05))
        try:
            for _ in range(int(deadline_s / 0.05)):
                if done():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"not within {deadline_s}s")
        finally:
            task.cancel()

    tries = 0

    def tried_enough() -> bool:
        nonlocal tries
        tries += 1
        return follower.wait.waits > 0 and tries > 60  # three seconds of failing tries

    with structlog.testing.capture_logs() as logged:
        asyncio.run(follow_until(tried_enough, 60))
    ready, why = follower.wait.check()
    assert not ready and topic in why
    lines = [x["event"] for x in logged if x["log_level"] in ("warning", "error")]
    assert lines == ["kafka_waiting"], f"one line for {tries} failed tries, not {lines[:5]}..."

    create_topics(make_admin(kafka_settings), catalog)
    producer = make_producer(kafka_settings)
    producer.produce(topic, key=suppression_key("default", "src", "db-1"),
                     value=b'{"alertname": "DatabaseDown"}')  # fmt: skip
    assert producer.flush(10) == 0
    asyncio.run(follow_until(lambda: follower.caught_up and sup.sources, 60))
    assert follower.wait.check()[0], "ready again once it follows"
    follower.close()


def test_a_consumer_that_stops_hearing_the_broker_is_replaced_where_it_had_read_to(
    kafka_settings: KafkaSettings, topics: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    GoesDeaf.reset()
    monkeypatch.setattr(broadcast, "make_consumer", GoesDeaf)
    topic = topics.name("suppressions")
    sup = Suppressions()
    follower = SuppressionFollower(
        kafka_settings, topic, topics.get("suppressions").partitions, sup
    )
    follower.hearing.every_s, follower.hearing.renewal.after_s = 0.0, 0.2
    producer = make_producer(kafka_settings)

    def source(name: str) -> None:
        producer.produce(topic, key=suppression_key("default", "src", name),
                         value=b'{"alertname": "DatabaseDown"}')  # fmt: skip
        assert producer.flush(10) == 0

    async def follow_until(done: Callable[[], object]) -> None:
        task = asyncio.create_task(follower.run(every=0.05, retry_every=0.05))
        try:
            for _ in range(600):
                if done():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("not within 30 s")
        finally:
            task.cancel()

    source("db-1")
    asyncio.run(follow_until(lambda: "db-1" in sup.sources))
    GoesDeaf.deaf.set()
    source("db-2")  # made while the first consumer hears nothing
    with structlog.testing.capture_logs() as logged:
        asyncio.run(follow_until(lambda: "db-2" in sup.sources))
    assert len(GoesDeaf.made) == 2
    assert any(x["event"] == "consumer_replaced" for x in logged)
    # the new consumer starts where the old one had read to, not from the beginning
    db1 = next(tp for tp in GoesDeaf.made[1].assigned if tp.offset >= 0)
    assert db1.offset >= 1
    follower.close()
