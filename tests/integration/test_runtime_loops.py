"""The runtime's at-least-once loop as a worker with per-partition state sees it: state
is loaded for a partition (as of its committed offset) before any of its records is
handed over, dropped when the partition moves, and a graceful rebalance or restart
hands no record over twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from confluent_kafka.admin import NewTopic

from streams.kafka import make_admin, make_producer
from streams.runtime.at_least_once import AtLeastOnceLoop
from streams.runtime.records import TP, Assigned, Run
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings


class Keeper:
    """Remembers, per partition, the offset its state was loaded at and every record
    handed over; notes a record of a partition whose state it does not hold."""

    def __init__(self, topic: str, log: list[tuple[str, object]]) -> None:
        self.topics = [topic]
        self.log = log
        self.state: dict[TP, int] = {}
        self.seen: list[tuple[int, int]] = []
        self.orphans = 0

    def on_assign(self, partitions: list[Assigned]) -> None:
        for p in partitions:
            self.state[p.tp] = p.committed
            self.log.append(("assign", (p.partition, p.committed)))

    def on_revoke(self, partitions: list[TP]) -> None:
        for tp in partitions:
            self.state.pop(tp, None)
            self.log.append(("revoke", tp[1]))

    def process(self, runs: list[Run], out: Outputs) -> None:
        for tp, run in runs:
            if tp not in self.state:
                self.orphans += len(run)
            self.seen += [(tp[1], m.offset() or 0) for m in run]


def _start(settings: KafkaSettings, worker: Keeper, group: str) -> Callable[[], None]:
    loop = AtLeastOnceLoop(settings, worker, name="keeper", group_id=group,
                           producer=make_producer(settings), stateful=True, batch=5,
                           block_s=0.1, consumer_conf={"session.timeout.ms": 6000,
                                                       "heartbeat.interval.ms": 500})  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(loop.run(stop)), daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()

    return halt


def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_state_per_partition_follows_the_assignment(kafka_settings: KafkaSettings) -> None:
    topic, group = f"{kafka_settings.topic_prefix}in", f"{kafka_settings.topic_prefix}keeper"
    admin = make_admin(kafka_settings)
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(30)
    producer = make_producer(kafka_settings)

    def send(n: int) -> None:
        for i in range(n):
            producer.produce(topic, value=b"x", partition=i % 2)
        assert producer.flush(30) == 0

    send(20)
    log_a: list[tuple[str, object]] = []
    a = Keeper(topic, log_a)
    halt_a = _start(kafka_settings, a, group)
    _until(lambda: len(a.seen) == 20)
    # nothing was committed yet when the state was loaded
    assert sorted(e for kind, e in log_a if kind == "assign") == [(0, -1001), (1, -1001)]

    log_b: list[tuple[str, object]] = []
    b = Keeper(topic, log_b)
    halt_b = _start(kafka_settings, b, group)
    _until(lambda: len(b.state) == 1 and len(a.state) == 1)
    # the partition that moved was dropped by one and loaded by the other, as of the
    # offset its first owner had committed: everything it handed over
    [(_, (moved, committed))] = [e for e in log_b if e[0] == "assign"]
    assert ("revoke", moved) in log_a and committed == 10
    send(20)
    _until(lambda: len(a.seen) + len(b.seen) == 40)
    halt_a()
    halt_b()
    assert a.orphans == b.orphans == 0, "a record came before its partition's state"
    handed = sorted(a.seen + b.seen)
    assert handed == sorted(set(handed)), "a record was handed over twice"
    assert [o for p, o in handed if p == moved] == list(range(20))

    # a restart loads both partitions as of everything handed over, and re-reads nothing
    log_c: list[tuple[str, object]] = []
    c = Keeper(topic, log_c)
    halt_c = _start(kafka_settings, c, group)
    _until(lambda: len(c.state) == 2)
    send(2)
    _until(lambda: len(c.seen) == 2)
    halt_c()
    assert sorted(e for kind, e in log_c if kind == "assign") == [(0, 20), (1, 20)]
    assert sorted(c.seen) == [(0, 20), (1, 20)]
