"""Rebuild the engine of an input partition when a worker is assigned it.

Latest checkpoint from the compacted `processor-state` topic, then a replay of the input
from the checkpoint's offset up to the group's committed offset with outputs discarded:
the engine is deterministic, so it ends in exactly the state its previous owner had at
its last commit. No checkpoint (a kill before the first one) or one of another engine
version: replay from the start of the retained input.

Every read is bounded: a replay or checkpoint read that makes no progress for
CALL_TIMEOUT_S (the broker away) raises TimeoutError, and the worker retries the
whole restore once the broker answers again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import structlog
from confluent_kafka import TopicPartition

from processors.rules.engine import RuleEngine
from processors.rules.snapshot import IncompatibleState
from schemas.rules import RuleFile
from streams.kafka import CALL_TIMEOUT_S, make_consumer
from streams.processor.checkpoint import read_checkpoint
from streams.processor.feed import InputRecord, Rejected
from streams.processor.metrics import ProcessorMetrics
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

Feed = Callable[[RuleEngine, Sequence[InputRecord], timedelta], Rejected]


class StateRestorer:
    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        pack: RuleFile,
        feeds: Mapping[str, Feed],
        state_topic: str,
        metrics: ProcessorMetrics,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.group_id = group_id
        self.pack = pack
        self.feeds = feeds
        self.state_topic = state_topic
        self.metrics = metrics
        self.beat = beat  # a long replay is progress: the worker stays live meanwhile
        self.skew = pack.settings.max_future_skew
        self._partitions, self._partitions_at = 1, float("-inf")
        # its own consumer, outside the group: assign() to read state and replay input
        self.consumer = make_consumer(settings, f"{group_id}-restore-{uuid.uuid4().hex[:8]}")

    def close(self) -> None:
        self.consumer.close()

    def state_partitions(self) -> int:
        """Partitions of the state topic, from metadata at most a minute old: a broker
        round trip per checkpoint stalled the loop (a decision-latency spike) for a
        number that changes only when an operator adds partitions."""
        now = time.monotonic()
        if now - self._partitions_at > 60:
            meta = self.consumer.list_topics(self.state_topic, timeout=CALL_TIMEOUT_S).topics[
                self.state_topic
            ]
            self._partitions = max(1, len(meta.partitions))
            self._partitions_at = now
        return self._partitions

    def restore(self, topic: str, partition: int, committed: int) -> RuleEngine:
        """The engine of `topic[partition]` as of the group's `committed` offset."""
        ckpt = read_checkpoint(
            self.consumer,
            self.state_topic,
            partition % self.state_partitions(),
            self.group_id,
            topic,
            partition,
            timeout=CALL_TIMEOUT_S,
        )
        if ckpt is None:
            # offsets without a checkpoint (first checkpoint not yet written)
            return self._rebuild(topic, partition, committed)
        if committed < ckpt.offset:
            # the group's offsets went back behind its own checkpoint: an operator reset
            # them to reprocess. The state is ahead of the input it would see again, so
            # rebuild it up to the new position instead of counting that input twice.
            log.warning("checkpoint_ahead_of_offsets", topic=topic, partition=partition,
                        checkpoint_offset=ckpt.offset, committed=committed)  # fmt: skip
            return self._rebuild(topic, partition, committed)
        engine = RuleEngine(self.pack.rules, self.pack.settings)
        try:
            engine.load(ckpt.state)
        except IncompatibleState as exc:
            log.warning("checkpoint_incompatible", topic=topic, partition=partition,
                        error=str(exc))  # fmt: skip
            return self._rebuild(topic, partition, committed)
        self.metrics.restores.inc()
        if committed > ckpt.offset:
            self._replay(engine, topic, partition, ckpt.offset, committed)
        log.info(
            "partition_restored",
            topic=topic,
            partition=partition,
            checkpoint_offset=ckpt.offset,
            committed=committed,
            series=engine.series_count(),
        )
        return engine

    def _rebuild(self, topic: str, partition: int, committed: int) -> RuleEngine:
        """A fresh engine fed the retained input up to `committed` (none: nothing yet)."""
        engine = RuleEngine(self.pack.rules, self.pack.settings)
        if committed >= 0:
            self._replay(engine, topic, partition, 0, committed)
            log.info("partition_rebuilt", topic=topic, partition=partition,
                     committed=committed, series=engine.series_count())  # fmt: skip
        return engine

    def _replay(self, engine: RuleEngine, topic: str, partition: int, start: int, end: int) -> None:
        """Feed input [start, end) into the engine, discarding what it emits: those
        transitions were committed by the run that consumed this input first."""
        feed = self.feeds[topic]
        self.consumer.assign([TopicPartition(topic, partition, start)])
        position = start
        moved_at = time.monotonic()
        try:
            while position < end:
                msgs = self.consumer.consume(20_000, timeout=0.2)
                run = [m for m in msgs if not m.error() and (m.offset() or 0) < end]
                if run:
                    position = (run[-1].offset() or 0) + 1
                    feed(engine, run, self.skew)  # what it refuses was dead-lettered then
                engine.advance()
                pos = self.consumer.position([TopicPartition(topic, partition)])[0].offset
                if max(position, pos) > position or run:
                    moved_at = time.monotonic()
                    self.beat()
                position = max(position, pos)
                if time.monotonic() - moved_at > CALL_TIMEOUT_S:
                    raise TimeoutError(f"replay of {topic}[{partition}] stalled at offset "
                                       f"{position} of {end} for {CALL_TIMEOUT_S:g}s")  # fmt: skip
        finally:
            self.consumer.unassign()
