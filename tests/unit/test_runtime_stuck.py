"""The stuck-client guard: a worker whose Kafka wait outlasts a cluster that answers a new
client exits to be restarted; an outage, however long, makes nobody exit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from streams.health import Health
from streams.kafka import KafkaWait
from streams.runtime.bootstrap import serving
from streams.runtime.stuck import ASK_AFTER_S, EXIT_STUCK, SERVED, StuckGuard, serves
from streams.settings import KafkaSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cluster:
    def __init__(self) -> None:
        self.up = True
        self.asked = 0

    def __call__(self) -> tuple[bool, str]:
        self.asked += 1
        return (True, SERVED) if self.up else (False, "no metadata")


def _guard(clock: Clock, cluster: Cluster, wait: KafkaWait, exits: list[int],
           after_s: float = 120.0) -> StuckGuard:  # fmt: skip
    return StuckGuard(KafkaSettings(), [], after_s=after_s, serves=cluster,
                      watched=lambda: [wait], exit=_exit(exits), clock=clock)  # fmt: skip


def _run(guard: StuckGuard, clock: Clock, seconds: float, step_s: float = 10.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step_s
        try:
            guard.step()
        except Exited:  # the real exit does not return either
            return


class Exited(Exception):
    pass


def _exit(exits: list[int]) -> Callable[[int], None]:
    def exit(code: int) -> None:
        exits.append(code)
        raise Exited

    return exit


def test_a_wait_that_outlasts_a_serving_cluster_exits_the_worker() -> None:
    clock, cluster, exits = Clock(), Cluster(), list[int]()
    wait = KafkaWait("agents/outbox", clock=clock)
    guard = _guard(clock, cluster, wait, exits)
    wait.waiting("acknowledgement of 12 records")
    _run(guard, clock, ASK_AFTER_S + 110)
    assert exits == [], "the cluster has served for less than the setting"
    _run(guard, clock, 20)
    assert exits == [EXIT_STUCK]


def test_no_question_while_the_waits_are_short_and_none_once_they_end() -> None:
    clock, cluster, exits = Clock(), Cluster(), list[int]()
    wait = KafkaWait("processor", clock=clock)
    guard = _guard(clock, cluster, wait, exits)
    for _ in range(100):  # an hour of short waits: retries that went through
        wait.waiting("the offset commit")
        _run(guard, clock, 20)
        wait.progressed()
        _run(guard, clock, 16)
    assert cluster.asked == 0 and exits == []


def test_an_outage_however_long_exits_nobody_and_the_clock_starts_when_it_ends() -> None:
    clock, cluster, exits = Clock(), Cluster(), list[int]()
    wait = KafkaWait("notifier", clock=clock)
    guard = _guard(clock, cluster, wait, exits)
    cluster.up = False
    wait.waiting("the broker (metadata)")
    _run(guard, clock, 6 * 3600)
    assert exits == [] and cluster.asked > 1000
    cluster.up = True  # back: the worker's clients get their time to reconnect
    _run(guard, clock, 110)
    assert exits == []
    wait.progressed()
    _run(guard, clock, 600)
    assert exits == []


def test_a_cluster_that_stops_serving_meanwhile_starts_the_count_again() -> None:
    clock, cluster, exits = Clock(), Cluster(), list[int]()
    wait = KafkaWait("projector", clock=clock)
    guard = _guard(clock, cluster, wait, exits)
    wait.waiting("the broker (metadata)")
    for _ in range(5):  # a flapping broker: never 120 s of service on end
        _run(guard, clock, 100)
        cluster.up = False
        _run(guard, clock, 10)
        cluster.up = True
    assert exits == []
    _run(guard, clock, 130)
    assert exits == [EXIT_STUCK]


def test_set_to_zero_the_guard_never_starts() -> None:
    guard = StuckGuard(KafkaSettings(stuck_restart_s=0), [], serves=Cluster(),
                       watched=list, exit=lambda _: None)  # fmt: skip
    assert guard.start()._thread is None


def test_a_worker_served_with_kafka_settings_runs_the_guard_until_it_stops() -> None:
    def guards() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "stuck-guard" and t.is_alive()]

    before = len(guards())
    with serving(Health(), CollectorRegistry(), host="127.0.0.1", port=0, signals=False,
                 kafka=KafkaSettings()):  # fmt: skip
        assert len(guards()) == before + 1
    for thread in guards()[before:]:
        thread.join(timeout=15)
    assert len(guards()) == before


def _metadata(isrs: dict[str, list[list[int]]], leader: int = 1) -> Any:
    """A metadata answer: each topic's partitions on three nodes, in sync as given."""

    def part(i: int, isr: list[int]) -> Any:
        return SimpleNamespace(id=i, leader=leader, error=None, replicas=[1, 2, 3], isrs=isr)

    return SimpleNamespace(topics={
        name: SimpleNamespace(error=None, partitions={i: part(i, isr) for i, isr in enumerate(p)})
        for name, p in isrs.items()})  # fmt: skip


def test_a_node_out_of_sync_leaves_the_cluster_serving_and_the_guard_watching() -> None:
    # a node dead or hung for hours: two copies of three in sync still take every write
    one_gone = _metadata({"alerts": [[1, 2], [1, 3]], "__consumer_offsets": [[1, 3]]})
    assert serves(one_gone, ["alerts"], 2) == (True, SERVED)


def test_fewer_replicas_in_sync_than_a_write_needs_is_the_clusters_wait() -> None:
    two_gone = _metadata({"alerts": [[1, 2, 3], [1]]})
    assert serves(two_gone, ["alerts"], 2) == (False, "alerts[1] has too few replicas in sync")
    internal = _metadata({"alerts": [[1, 2, 3]], "__transaction_state": [[2]]})
    assert serves(internal, ["alerts"], 2)[0] is False, "the internal topics count too"
    assert serves(_metadata({"alerts": [[1]]}, leader=-1), ["alerts"], 1) == (
        False,
        "alerts[0] has no leader",
    )
    assert serves(_metadata({}), ["alerts"], 1) == (False, "topic alerts not served")
