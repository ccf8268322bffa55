"""A processor whose producer was told only of the nodes the cluster counts replaces its
consumer the same way: the old one may still be a member of its group at the node left
out (which goes on answering its heartbeats), while the commits go to the coordinator
the cluster elected, which refuses them as from an unknown member."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.counted_nodes import Count
from streams.health import Health
from streams.metrics import WorkerMetrics
from streams.runtime import exactly_once
from streams.runtime.exactly_once import ExactlyOnceLoop
from streams.settings import KafkaSettings
from tests.unit.deaf_consumer import DeafThenWorking
from tests.unit.test_processor_membership import Worker

EVERY_NODE = "n1:9092,n2:9092,n3:9092"
COUNTED = Count({2: "n2:9092", 3: "n3:9092"}, frozenset({1}))


class Consumer(DeafThenWorking):
    def __init__(self, settings: KafkaSettings, *_: Any, **__: Any) -> None:
        super().__init__()
        self.stuck = False
        self.bootstrap = settings.bootstrap_servers


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> ExactlyOnceLoop:
    DeafThenWorking.reset()
    monkeypatch.setattr(exactly_once, "make_consumer", Consumer)
    loop = ExactlyOnceLoop(KafkaSettings(bootstrap_servers=EVERY_NODE), Worker(),
                           name="processor/t", group_id="g", instance_id="t",
                           metrics=WorkerMetrics(CollectorRegistry()), health=Health())  # fmt: skip
    monkeypatch.setattr(loop.parts, "rewind", lambda _: None)
    return loop


def narrowing_abort(loop: ExactlyOnceLoop) -> None:
    loop.txn.narrowed = COUNTED


def test_a_producer_told_only_of_the_counted_nodes_brings_a_new_consumer_with_it(
    loop: ExactlyOnceLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop.txn, "abort", lambda: narrowing_abort(loop))
    loop._trouble = "transaction failed: the cluster left out nodes [1]"
    loop._recover()
    first, second = DeafThenWorking.made
    assert first.closed and first.bootstrap == EVERY_NODE  # type: ignore[attr-defined]
    assert second.bootstrap == "n2:9092,n3:9092"  # type: ignore[attr-defined]
    assert second.subscribed == ["metrics"]


def test_the_consumer_is_replaced_once_per_node_left_out(
    loop: ExactlyOnceLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop.txn, "abort", lambda: narrowing_abort(loop))
    for _ in range(3):  # later transactions fail for other reasons
        loop._trouble = "transaction failed"
        loop._recover()
    assert len(DeafThenWorking.made) == 2


def test_a_producer_replaced_with_every_node_keeps_the_consumer(
    loop: ExactlyOnceLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop.txn, "abort", lambda: None)
    loop._trouble = "transaction failed"
    loop._recover()
    assert len(DeafThenWorking.made) == 1
