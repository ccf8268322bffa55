"""The at-least-once loop gets a new consumer when the old one stops hearing the broker.

After a broker restart the agents' router consumer was seen failing every metadata
request ("broker transport failure") for minutes while the broker answered every other
client: it fetched nothing, so alerts waited and nobody was paged. A consumer that fails
every request stands in for it here; its successor works."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka import KafkaWait
from streams.runtime import at_least_once
from streams.runtime.at_least_once import AtLeastOnceLoop
from streams.runtime.records import Run
from streams.runtime.renewal import Hearing, Renewal
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings
from tests.unit.deaf_consumer import DeafThenWorking, each_stuck_consumer


class Worker:
    topics = ["alerts"]

    def on_assign(self, partitions: list[Any]) -> None: ...

    def on_revoke(self, partitions: list[Any]) -> None: ...

    def process(self, runs: list[Run], out: Outputs) -> None: ...


@each_stuck_consumer
def test_a_consumer_that_stops_hearing_the_broker_is_replaced(
    monkeypatch: pytest.MonkeyPatch, stuck: type[DeafThenWorking]
) -> None:
    DeafThenWorking.reset()
    monkeypatch.setattr(at_least_once, "make_consumer", stuck)
    monkeypatch.setattr(at_least_once, "PROBE_EVERY_S", 0.0)
    loop = AtLeastOnceLoop(KafkaSettings(), Worker(), name="test", group_id="g",
                           producer=None, block_s=0, idle_s=0.01)  # fmt: skip
    loop.renewal.after_s = 0.2
    loop.membership.grace_s = 0.1
    stop = threading.Event()

    async def until_heard() -> None:
        task = asyncio.create_task(loop.run(stop))
        assert await asyncio.to_thread(DeafThenWorking.heard.wait, 10), (
            "no consumer heard the broker"
        )
        stop.set()
        await task

    asyncio.run(asyncio.wait_for(until_heard(), timeout=10))
    first, second = DeafThenWorking.made
    assert first.closed and second.subscribed == ["alerts"]
    assert loop.consumer is second and not loop.wait.stalled  # type: ignore[comparison-overlap]


def test_renewal_comes_after_failing_for_its_whole_span_and_then_again() -> None:
    now = [0.0]
    renewal = Renewal(after_s=30, clock=lambda: now[0])
    assert not renewal.failed()
    now[0] = 29
    assert not renewal.failed(), "failing, but not yet for 30 s"
    now[0] = 31
    assert renewal.failed()
    now[0] = 50
    assert not renewal.failed(), "the new client gets its own 30 s"
    now[0] = 62
    assert renewal.failed()
    renewal.ok()
    now[0] = 100
    assert not renewal.failed(), "a success starts the count again"
    assert renewal.renewals == 2


class _Metadata:
    """A group-less consumer's metadata answers: it hears the broker or it does not."""

    def __init__(self) -> None:
        self.hears = True

    def list_topics(self, topic: str, timeout: float) -> object:
        if not self.hears:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
        return object()

    def memberid(self) -> str | None:
        return None


def test_a_group_less_consumer_is_replaced_when_its_requests_or_fetches_fail_for_long() -> None:
    now = [0.0]
    hearing = Hearing(KafkaWait("test/view"), every_s=10, clock=lambda: now[0])
    consumer = _Metadata()
    assert hearing.due() and hearing.probe(consumer, "t") == ""
    assert not hearing.due(), "asked again only after its interval"
    consumer.hears = False
    now[0] = 10
    assert hearing.probe(consumer, "t") == "" and hearing.wait.stalled
    now[0] = 40
    assert "Broker transport failure" in hearing.probe(consumer, "t")
    hearing.renewed()
    assert hearing.due(), "a new consumer is asked at once"
    consumer.hears = True
    assert hearing.probe(consumer, "t") == "" and not hearing.wait.stalled
    # metadata answered, but its fetches fail (a consumer answering "unknown partition")
    for t in (50, 60, 70, 85):
        now[0] = t
        hearing.fetch_failed(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        reason = hearing.probe(consumer, "t")
        assert hearing.wait.stalled
    assert reason.startswith("its requests failed for 30 s") and "fetch" in reason


def test_a_worker_that_lost_its_partitions_is_not_ready_until_assigned_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a session that lapsed (the group coordinator gone with the quorum): the consumer
    # keeps its member id while it tries to rejoin, and has nothing to work on
    from streams.health import Health

    monkeypatch.setattr(at_least_once, "make_consumer", DeafThenWorking)
    health = Health()
    loop = AtLeastOnceLoop(KafkaSettings(), Worker(), name="test", group_id="g",
                           producer=None, health=health)  # fmt: skip

    def group_ok() -> bool:
        return bool(health.ready()[1]["checks"]["group"]["ok"])  # type: ignore[index]

    loop._on_assign(loop.consumer, [])
    assert group_ok()
    loop._on_lost(loop.consumer, [])
    assert not group_ok()
    loop._on_assign(loop.consumer, [])
    assert group_ok()


class RejoiningForGood:
    """The first one made loses its partitions with its session and is never assigned
    again, keeping its member id (its coordinator, a node cut off from the others, still
    answers and can store no assignment); its successors are assigned at once."""

    made: list[RejoiningForGood] = []
    heard = threading.Event()  # a successor was asked for metadata

    def __init__(self, settings: KafkaSettings, *_: Any, **__: Any) -> None:
        self.bootstrap = settings.bootstrap_servers
        self.first = not RejoiningForGood.made
        self.closed = False
        RejoiningForGood.made.append(self)

    def subscribe(self, topics: list[str], on_assign: Any, on_lost: Any, **_: Any) -> None:
        on_assign(self, [])
        if self.first:
            on_lost(self, [])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        return []

    def list_topics(self, topic: str, timeout: float) -> Any:
        from types import SimpleNamespace

        if not self.first:
            RejoiningForGood.heard.set()
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None)})

    def memberid(self) -> str:
        return "member-1"

    def close(self) -> None:
        self.closed = True


def test_a_consumer_never_assigned_again_is_replaced_by_one_told_of_the_counted_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.counted_nodes import Count

    RejoiningForGood.made = []
    RejoiningForGood.heard.clear()
    monkeypatch.setattr(at_least_once, "make_consumer", RejoiningForGood)
    monkeypatch.setattr(at_least_once, "PROBE_EVERY_S", 0.0)
    monkeypatch.setattr(at_least_once, "left_out",
                        lambda _: Count({2: "n2:9092", 3: "n3:9092"}, frozenset({1})))  # fmt: skip
    settings = KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092")
    loop = AtLeastOnceLoop(settings, Worker(), name="test", group_id="g", producer=None,
                           block_s=0, idle_s=0.01)  # fmt: skip
    loop.renewal.after_s = 60  # not waited for: a node left out is reason enough
    loop.membership.grace_s = 0.1
    stop = threading.Event()

    async def until_replaced() -> None:
        task = asyncio.create_task(loop.run(stop))
        assert await asyncio.to_thread(RejoiningForGood.heard.wait, 10), "never replaced"
        stop.set()  # ends the loop once the probe that asked is done
        await task

    asyncio.run(asyncio.wait_for(until_replaced(), timeout=10))
    first, second = RejoiningForGood.made
    assert first.closed and second.bootstrap == "n2:9092,n3:9092"
    assert loop.joined and not loop.wait.stalled
