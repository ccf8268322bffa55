"""What the gateway's writer tells the stuck-client guard: it waits from the first request
Kafka did not acknowledge in time until one is acknowledged, even late; a producer that
never acknowledges anything keeps it waiting whatever the metadata probe says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.gateway.writer import KafkaWriter, NotAcknowledged
from streams.kafka import waits

Callback = Callable[[KafkaError | None, Any], None]


class Producer:
    """Acknowledges what it holds when `acking`; expires it with an error on `expire()`;
    the broker answers its metadata requests when `up`."""

    def __init__(self) -> None:
        self.acking, self.up = False, True
        self.held: list[Callback] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, partition: int,
                callback: Callback) -> None:  # fmt: skip
        self.held.append(callback)

    def poll(self, timeout: float = 0) -> int:
        if not self.acking:
            return 0
        held, self.held = self.held, []
        for callback in held:
            callback(None, None)
        return len(held)

    def expire(self) -> None:
        held, self.held = self.held, []
        for callback in held:
            callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> SimpleNamespace:
        if not self.up:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return SimpleNamespace(brokers={1: object()})

    def flush(self, timeout: float = -1) -> int:
        return len(self.held)

    def __len__(self) -> int:
        return len(self.held)


RECORDS = [("alerts", b"k", b"v")]


async def _settle() -> None:
    for _ in range(50):  # the writer's reports are served every few milliseconds
        await asyncio.sleep(0.005)


def _writer(producer: Producer) -> KafkaWriter:
    return KafkaWriter(producer, ack_timeout=0.05)  # type: ignore[arg-type]


def test_a_producer_that_never_acknowledges_keeps_the_writer_waiting() -> None:
    producer = Producer()
    writer = _writer(producer)

    async def scenario() -> None:
        with pytest.raises(NotAcknowledged):
            await writer.write(RECORDS)
        writer._probe()  # the broker answers metadata: not what was wrong
        producer.expire()  # the stuck producer gives its records up
        producer.acking = True
        await _settle()

    asyncio.run(scenario())
    assert writer.wait.stalled and writer.wait.what.startswith("acknowledgement")
    assert writer.wait in waits(), "watched by the stuck-client guard"
    # a gateway application stopped in a process that goes on (tests, an embedding): its
    # writer is closed, and the guard must not restart the process for its wait
    writer.close(timeout=0)
    assert writer.wait not in waits() and not writer.wait.stalled


def test_a_late_acknowledgement_ends_the_wait_on_an_idle_gateway() -> None:
    producer = Producer()
    writer = _writer(producer)

    async def scenario() -> None:
        with pytest.raises(NotAcknowledged):
            await writer.write(RECORDS)
        assert writer.wait.stalled
        producer.acking = True  # slow, not stuck: the records are acknowledged late
        await _settle()
        writer._probe()

    asyncio.run(scenario())
    assert not writer.wait.stalled


def test_the_broker_away_is_a_wait_that_ends_when_it_answers() -> None:
    producer = Producer()
    writer = _writer(producer)
    producer.up = False
    writer._probe()
    assert writer.broker_down and writer.wait.what == "the broker (metadata)"
    producer.up = True
    writer._probe()
    assert not writer.broker_down and not writer.wait.stalled


def test_what_expired_during_an_outage_is_the_outages_and_ends_with_it() -> None:
    producer = Producer()
    writer = _writer(producer)

    async def scenario() -> None:
        with pytest.raises(NotAcknowledged):
            await writer.write(RECORDS)  # in flight as the broker goes away
        producer.up = False
        writer._probe()
        producer.expire()  # given up while the broker was away
        await _settle()
        producer.up = True
        writer._probe()

    asyncio.run(scenario())
    assert not writer.wait.stalled, "an idle gateway would be restarted after every outage"


class OneDeadBroker(Producer):
    """Its next metadata request goes unanswered (sent to a broker that died), the one
    after is answered by another broker."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 1

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> SimpleNamespace:
        if self.lost:
            self.lost -= 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        return super().list_topics(topic, timeout)


def test_one_unanswered_probe_while_the_cluster_serves_refuses_nothing() -> None:
    producer = OneDeadBroker()
    writer = _writer(producer)
    writer._probe()
    assert not writer.broker_down and not writer.wait.stalled
    # the broker really away: down at the first probe, as before
    producer.up = False
    writer._probe()
    assert writer.broker_down


class QueuedBehindAWrite(Producer):
    """Its connection waits behind a write that a node cut off from the others holds:
    no metadata request of its own is answered."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> SimpleNamespace:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))


def test_a_producer_queued_behind_a_held_write_refuses_nothing_while_the_cluster_answers(
) -> None:  # fmt: skip
    answers = [True]
    writer = KafkaWriter(QueuedBehindAWrite(), ack_timeout=0.05,  # type: ignore[arg-type]
                         cluster_answers=lambda: answers[0])  # fmt: skip
    writer._probe()
    assert not writer.broker_down, "the nodes answer on connections of their own"
    answers[0] = False  # no node answers either: away
    writer._probe()
    assert writer.broker_down and writer.wait.what == "the broker (metadata)"
    answers[0] = True  # back only once the writer's own producer is answered
    writer._probe()
    assert writer.broker_down


def test_a_count_that_fails_is_no_answer() -> None:
    def broken() -> bool:
        raise RuntimeError("no event loop")

    writer = KafkaWriter(QueuedBehindAWrite(), ack_timeout=0.05,  # type: ignore[arg-type]
                         cluster_answers=broken)  # fmt: skip
    writer._probe()
    assert writer.broker_down
