"""The gap filler on the real broker: what faust skipped over is read back, in order;
a redelivery is recognised; transaction markers are not records; a broker away is
waited for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from streams.agents import gaps
from streams.agents.app import build_app
from streams.agents.gaps import GapFiller
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings


def _produce(kafka_settings: KafkaSettings, work: str, n: int) -> None:
    """`n` records k0/v0 .. on partition 0 of `work`, acknowledged."""
    producer = make_producer(kafka_settings)
    for i in range(n):
        producer.produce(work, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    assert producer.flush(10) == 0


def test_records_skipped_by_faust_come_back_in_order_and_redeliveries_are_skipped(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    work = topics.name("incident-work")
    group = f"{kafka_settings.topic_prefix}tocsin-agents"
    _produce(kafka_settings, work, 10)
    committer = Consumer({"bootstrap.servers": kafka_settings.bootstrap_servers,
                          "group.id": group, "enable.auto.commit": False})  # fmt: skip
    committer.commit(offsets=[TopicPartition(work, 0, 3)], asynchronous=False)
    committer.close()

    async def scenario() -> list[object]:
        filler = GapFiller(kafka_settings, group)
        try:
            return [
                await filler.missing(work, 0, 7),  # faust jumped from 3 to 7
                await filler.missing(work, 0, 8),  # in order again
                await filler.missing(work, 0, 5),  # redelivered after faust's seek
                filler.filled,
            ]
        finally:
            filler.close()

    gap, in_order, redelivery, filled = asyncio.run(scenario())
    assert gap == [(b"k3", b"v3", 3), (b"k4", b"v4", 4), (b"k5", b"v5", 5), (b"k6", b"v6", 6)]
    assert in_order == []
    assert redelivery is None
    assert filled == 4


def test_transaction_markers_in_a_jump_are_not_records(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    alerts = topics.name("alerts")
    group = f"{kafka_settings.topic_prefix}tocsin-agents"
    tx = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers,
                   "transactional.id": f"{kafka_settings.topic_prefix}gaps"})  # fmt: skip
    tx.init_transactions(10)
    for value in (b"a", b"b"):  # each committed transaction leaves a marker offset
        tx.begin_transaction()
        tx.produce(alerts, value=value, partition=0)
        tx.commit_transaction(10)
    # offsets: a=0, marker=1, b=2, marker=3; faust is handed b after a: a jump over 1

    async def scenario() -> tuple[object, object]:
        filler = GapFiller(kafka_settings, group)
        try:
            return await filler.missing(alerts, 0, 0), await filler.missing(alerts, 0, 2)
        finally:
            filler.close()

    first, second = asyncio.run(scenario())
    assert first == [] and second == [], "a marker is nothing to process"


def test_with_the_broker_away_the_filler_waits_for_it_instead_of_failing_the_batch(
    kafka_settings: KafkaSettings, topics: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent asks the filler about a batch faust already handed over: were the lookup
    to raise, the batch would leave the agent's loop and be acknowledged unprocessed."""
    work = topics.name("incident-work")
    group = f"{kafka_settings.topic_prefix}tocsin-agents"
    _produce(kafka_settings, work, 4)
    away = KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
    failures = {"committed": 2, "read": 2}

    def flaky(name: str, call: Callable[..., object]) -> Callable[..., object]:
        def answer(*args: object) -> object:
            if failures[name]:
                failures[name] -= 1
                raise away if name == "committed" else TimeoutError("offsets unread")
            return call(*args)

        return answer

    filler = GapFiller(kafka_settings, group)
    monkeypatch.setattr(gaps, "RETRY_S", 0.01)
    monkeypatch.setattr(filler, "_committed", flaky("committed", filler._committed))
    monkeypatch.setattr(filler, "_read", flaky("read", filler._read))

    async def scenario() -> list[object]:
        try:
            return [await filler.missing(work, 0, 2), await filler.missing(work, 0, 3)]
        finally:
            filler.close()

    jumped, in_order = asyncio.run(scenario())
    assert jumped == [(b"k0", b"v0", 0), (b"k1", b"v1", 1)], "no commit yet: from the start"
    assert in_order == []
    assert failures == {"committed": 0, "read": 0}
    assert filler.wait.waits == 2 and not filler.wait.stalled, "waited, and said it did"


def test_readiness_hears_every_gap_filler_of_the_agents(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The decide agent's and the heartbeats agent's gap lookups both wait for a broker
    that is away: readiness must hear both, or a worker would report ready while one of
    its agents stands still."""
    app = build_app(kafka_settings, load_config([EXAMPLE_CONFIG]), datadir=str(tmp_path))
    workers = [w.worker for w in app.conf.tocsin_waits]
    assert {"agents/gaps", "agents/heartbeat-gaps"} <= set(workers)
    assert len(workers) == len(set(workers))
