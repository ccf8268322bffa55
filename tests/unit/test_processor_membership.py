"""The processor's consumer, out of its group past the rebalance timeout while the broker
answers, is taken for a fenced one: the recovery replaces it, and the new consumer's
assignment restores the partitions. Until then readiness says what it waits for."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.health import Health
from streams.metrics import WorkerMetrics
from streams.runtime import exactly_once
from streams.runtime.exactly_once import ExactlyOnceLoop
from streams.runtime.records import Run
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings
from tests.unit.deaf_consumer import DeafThenWorking, GrouplessThenWorking


class Worker:
    topics = ["metrics"]

    def on_assign(self, partitions: list[Any]) -> None: ...

    def on_revoke(self, partitions: list[Any]) -> None: ...

    def process(self, runs: list[Run], out: Outputs) -> None: ...

    def committed(self) -> None: ...

    def aborted(self) -> None: ...


def test_a_consumer_in_no_group_is_replaced_after_its_grace_and_renewal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    DeafThenWorking.reset()
    monkeypatch.setattr(exactly_once, "make_consumer", GrouplessThenWorking)
    monkeypatch.setattr(exactly_once, "left_out", lambda _: None)  # no node left out
    health = Health()
    loop = ExactlyOnceLoop(KafkaSettings(), Worker(), name="processor/t", group_id="g",
                           instance_id="t", metrics=WorkerMetrics(CollectorRegistry()),
                           health=health)  # fmt: skip
    now = [0.0]
    loop.membership._clock = loop.renewal._clock = lambda: now[0]
    loop._probe_broker()
    assert loop._trouble is None and not loop.wait.stalled, "a join takes a moment"
    now[0] = 299
    loop._probe_broker()
    # a static member gets its id only once the join phase ends, which may wait this
    # long for another processor that is restoring
    assert loop._trouble is None and not loop.wait.stalled, "within the rebalance timeout"
    now[0] = 311
    loop._probe_broker()
    assert loop.wait.stalled and loop.wait.what.startswith("the consumer group")
    assert health.ready()[1]["checks"]["progress"]["ok"] is False  # type: ignore[index]
    now[0] = 342
    loop._probe_broker()
    assert loop._trouble is not None and loop._consumer_fenced
    loop._replace_consumer()
    first, second = DeafThenWorking.made
    assert first.closed and second.subscribed == ["metrics"]
    now[0] = 343
    loop._probe_broker()  # the new one is in its group
    assert not loop.wait.stalled


asked: list[tuple[str, str]] = []  # (group, static member) the cluster was asked about


def trapped_loop(
    monkeypatch: pytest.MonkeyPatch, held: bool | None
) -> tuple[ExactlyOnceLoop, list[float]]:
    """A processor whose consumer lost its partitions while node 1 is cut off; the
    cluster's coordinator of its group holds it (`held`) or not."""
    from streams.counted_nodes import Count

    DeafThenWorking.reset()
    monkeypatch.setattr(exactly_once, "make_consumer", DeafThenWorking)
    monkeypatch.setattr(exactly_once, "left_out",
                        lambda _: Count({2: "n2:9092", 3: "n3:9092"}, frozenset({1})))  # fmt: skip
    asked.clear()

    def held_by_cluster(_s: object, _f: object, group: str, instance: str) -> bool | None:
        asked.append((group, instance))
        return held

    monkeypatch.setattr(exactly_once, "held_by_cluster", held_by_cluster)
    loop = ExactlyOnceLoop(KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092"),
                           Worker(), name="processor/t", group_id="g", instance_id="t",
                           metrics=WorkerMetrics(CollectorRegistry()), health=Health())  # fmt: skip
    DeafThenWorking.made[0].stuck = False  # hears the broker, has a member id
    now = [0.0]
    loop.membership._clock = loop.renewal._clock = lambda: now[0]
    loop._on_assign(loop.consumer, [])
    loop._on_lost(loop.consumer, [])
    loop._probe_broker()
    assert asked == [] and loop._trouble is None, "a rejoin takes a moment"
    return loop, now


def test_a_consumer_the_clusters_coordinator_does_not_hold_is_replaced_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # not the rebalance timeout: the cluster's coordinator expired it and went on
    loop, now = trapped_loop(monkeypatch, held=False)
    now[0] = 11
    loop._probe_broker()
    assert asked == [("g", "g-t")]
    assert loop._trouble is not None and loop._consumer_fenced
    assert loop.wait.stalled and loop.wait.what.startswith("the consumer group")
    loop._replace_consumer()
    assert len(DeafThenWorking.made) == 2
    assert loop._consumer_left_out == {1}, "told only of the counted nodes"
    # the new one cannot be trapped at node 1: out of its group, it waits its rebalance
    loop._trouble, loop._consumer_fenced = None, False
    loop.wait.progressed()  # (else the probe renews the producer, a real one)
    DeafThenWorking.made[1].stuck = False
    loop._on_assign(loop.consumer, [])
    loop._on_lost(loop.consumer, [])
    for now[0] in (12.0, 23.0):
        loop._probe_broker()
    assert asked == [("g", "g-t")] and not loop._consumer_fenced


def test_a_consumer_the_clusters_coordinator_holds_waits_for_its_rebalance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the rebalance may wait this long for another processor that is restoring
    for held in (True, None):
        loop, now = trapped_loop(monkeypatch, held=held)
        for now[0] in (11.0, 150.0, 299.0):
            loop._probe_broker()
            assert loop._trouble is None and not loop._consumer_fenced, (held, now[0])
        assert len(DeafThenWorking.made) == 1


def test_a_consumer_never_assigned_again_after_losing_its_partitions_is_out_of_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # its coordinator a node cut off from the others: it keeps its member id and rejoins
    # there for good; without a verdict from the cluster's coordinator it waits out the
    # rebalance timeout, and the new one is told only of the nodes the cluster counts
    loop, now = trapped_loop(monkeypatch, held=None)
    now[0] = 311
    loop._probe_broker()
    assert loop.wait.stalled and loop.wait.what.startswith("the consumer group")
    now[0] = 342
    loop._probe_broker()
    assert loop._trouble is not None and loop._consumer_fenced
    loop._replace_consumer()
    assert len(DeafThenWorking.made) == 2
    assert loop._consumer_left_out == {1}, "told only of the counted nodes"
