"""The worker protocol: what a worker gives the runtime's loop, and what it gets.

A worker names the topics it consumes and processes batches; the loop owns the Kafka
clients, the group, the commits, the waits on the broker and readiness. Per-partition
state is loaded in `on_assign` (which gets the group's committed offset of each
partition, the point that state must be rebuilt to) and dropped in `on_revoke`; the
loop hands `process` only records of partitions whose `on_assign` went through, so a
worker never sees a record of a partition it holds no state for.

`process` writes through `Outputs`: in the exactly-once loop every record produced
there commits atomically with the offsets of the batch; in the at-least-once loop the
offsets are committed only once Kafka acknowledged every record produced there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import Producer, TopicPartition

from streams.runtime.produce import produce
from streams.runtime.records import TP, Assigned, Run


class Worker(Protocol):
    """What both loops need of a worker."""

    @property
    def topics(self) -> Sequence[str]:
        """The topics it consumes."""

    def on_assign(self, partitions: list[Assigned]) -> None:
        """Load the state of these partitions as of their committed offsets. May raise a
        KafkaException or TimeoutError (the broker away): the loop tries again."""

    def on_revoke(self, partitions: list[TP]) -> None:
        """Drop the state of these partitions: another worker owns them now."""


class TransactionalWorker(Worker, Protocol):
    def process(self, runs: list[Run], out: Outputs) -> None: ...

    def committed(self) -> None:
        """The transaction holding what `process` wrote since the last call committed."""

    def aborted(self) -> None:
        """It was aborted: what `process` wrote since the last commit is void; the loop
        rebuilds every partition through `on_assign` before the next batch."""


class AtLeastOnceWorker(Worker, Protocol):
    """May also define `acknowledged() -> int`: called once the batch's outputs were
    acknowledged, it produces what may only follow them (the notifier's delivered
    marks, after their receipts) and returns how many; those are acknowledged in turn
    before the offsets are committed."""

    def process(self, runs: list[Run], out: Outputs) -> Awaitable[None] | None:
        """A plain method or a coroutine function."""


class Outputs:
    """Where a worker writes. `written` counts the records since the loop last reset it
    (the exactly-once loop commits at once a batch that wrote)."""

    __slots__ = ("beat", "positions", "producer", "written")

    def __init__(self, producer: Producer | None, beat: Callable[[], None],
                 positions: Callable[[], list[TopicPartition]]) -> None:  # fmt: skip
        self.producer = producer  # replaced by the loop when its producer is
        self.beat = beat
        self.positions = positions  # the consumer's positions: what a checkpoint covers
        self.written = 0

    def produce(self, topic: str, value: Any = None, key: Any = None,
                partition: int = -1) -> None:  # fmt: skip
        """Enqueue a record, waiting for room when the producer's queue is full."""
        assert self.producer is not None, "this loop has no producer of its own"
        produce(self.producer, topic, value, key, partition, self.beat)
        self.written += 1
