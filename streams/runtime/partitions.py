"""The partitions a worker holds state for, loaded and dropped through its hooks."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as KafkaTP

from streams.kafka import CALL_TIMEOUT_S, committed_offsets
from streams.runtime.records import TP, Assigned
from streams.runtime.worker import Worker

log = structlog.get_logger(__name__)


class HeldPartitions:
    """`held`: the partitions whose `on_assign` went through; only their records are
    handed to the worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.topics = frozenset(worker.topics)
        self.held: set[TP] = set()
        self.assigned_once = False

    def ours(self, partitions: list[KafkaTP]) -> list[KafkaTP]:
        """The partitions of the worker's topics among those the group assigned."""
        foreign = [tp for tp in partitions if tp.topic not in self.topics]
        if not foreign:
            return partitions
        # a group shared with another deployment's subscription: never touch its data
        log.warning("foreign_partitions_ignored", topics=sorted({tp.topic for tp in foreign}))
        return [tp for tp in partitions if tp.topic in self.topics]

    def load(self, consumer: Consumer, partitions: list[KafkaTP]) -> list[KafkaTP]:
        """The worker's state of these partitions as of their committed offsets (may
        raise KafkaException or TimeoutError, the broker away); returns those offsets."""
        asked = [KafkaTP(tp.topic, tp.partition) for tp in partitions]
        offsets = committed_offsets(consumer, asked, CALL_TIMEOUT_S) if asked else []
        self.worker.on_assign([Assigned(tp.topic, tp.partition, tp.offset) for tp in offsets])
        self.held.update((tp.topic, tp.partition) for tp in offsets)
        return offsets

    def drop(self, partitions: Iterable[TP]) -> None:
        gone = list(partitions)
        self.held.difference_update(gone)
        self.worker.on_revoke(gone)

    def rewind(self, consumer: Consumer) -> None:
        """State and positions of every assigned partition back to the committed offsets."""
        assignment = self.ours(consumer.assignment())
        # what a failed load may have loaded in part goes too
        self.drop(self.held | {(tp.topic, tp.partition) for tp in assignment})
        for tp in self.load(consumer, assignment):
            # nothing committed yet: from the start, as the group's offset reset does
            where = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(KafkaTP(tp.topic, tp.partition, where))

    def ready(self) -> tuple[bool, str]:
        if not self.assigned_once:
            return False, "not yet a member of the consumer group"
        # zero partitions is a legitimate standby when workers outnumber partitions
        return True, f"{len(self.held)} partitions assigned and restored"
