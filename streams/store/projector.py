"""`tocsin run projector`: the incident topics into the SQL store, exactly once.

A confluent-kafka consumer group shares the partitions among projectors; Kafka's own
committed offsets are never used. The store holds the offsets (projection.py), so on
assignment the consumer starts where the store says, or at the beginning when the
store cannot be read then (what is there already is skipped by offset). A batch is
applied in one transaction; when the database is away the same batch is retried,
with a growing pause, until it lands: nothing is skipped, and readiness says
"waiting for the store" meanwhile. A record that does not decode goes to `deadletter`
(acknowledged by Kafka before the transaction that moves past it) and is counted.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from prometheus_client import Counter as Metric
from prometheus_client import Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import KafkaWait, make_consumer, make_producer, watermarks
from streams.metrics import WorkerMetrics
from streams.runtime.commits import flush_acknowledged
from streams.runtime.deadletters import dead_letter
from streams.runtime.renewal import OUT_OF_GROUP, Membership, Renewal
from streams.settings import KafkaSettings
from streams.store.db import migrate
from streams.store.projection import (
    KINDS,
    Applied,
    Kind,
    Rec,
    apply_batch,
    clear,
    record_seen,
    stored_offsets,
)

log = structlog.get_logger(__name__)
BATCH = 5000
MAX_PAUSE_S = 5.0
# consume() waits this long for a full batch: what one record waits at most when the
# topics are quiet (the command-to-row latency), a turn of the loop when they are idle
WAIT_S = 0.05
# how often a projector tells the store it heard from Kafka (the console's freshness)
SEEN_EVERY_S = 10.0


class ProjectorMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.rows = Metric("tocsin_projector_rows_total", "Rows written, by table.",
                            ["table"], registry=r)  # fmt: skip
        self.skipped = Metric("tocsin_projector_skipped_total",
                               "Records already in the store (a replay).", registry=r)  # fmt: skip
        self.store_errors = Metric(
            "tocsin_projector_store_errors_total", "Transactions that failed and were retried.",
            registry=r)  # fmt: skip
        self.batch_seconds = Histogram("tocsin_projector_batch_seconds",
                                       "Time to apply one batch.", registry=r)  # fmt: skip


class StoreWait:
    """Whether the projector waits for its database, for readiness and the log."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.error = ""

    def waiting(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("store_unavailable", error=str(error)[:300])
        self.error = str(error).splitlines()[0][:200] if str(error) else type(error).__name__

    def ok(self) -> None:
        if self.since is not None:
            log.info("store_recovered", waited_s=round(time.monotonic() - self.since, 1))
        self.since = None

    def check(self) -> tuple[bool, str]:
        if self.since is None:
            return True, "writing"
        return False, f"waiting {time.monotonic() - self.since:.0f}s for the store: {self.error}"


@dataclass
class Topics:
    by_name: dict[str, Kind]

    @classmethod
    def of(cls, settings: KafkaSettings) -> Topics:
        catalog = Catalog(settings)
        return cls({catalog.name(k): k for k in KINDS})

    @property
    def names(self) -> list[str]:
        return list(self.by_name)


class Projector:
    def __init__(self, settings: KafkaSettings, engine: Engine, *,
                 metrics: ProjectorMetrics | None = None, health: Health | None = None,
                 group_id: str | None = None, batch: int = BATCH) -> None:  # fmt: skip
        self.settings, self.engine = settings, engine
        self.metrics = metrics or ProjectorMetrics()
        self.health = health or Health()
        self.topics = Topics.of(settings)
        self.group_id = group_id or f"{settings.topic_prefix}projector"
        self.batch = batch
        self.store_wait = StoreWait()
        self.kafka_wait = KafkaWait("projector")
        self.health.add_check("store", self.store_wait.check)
        self.health.add_check("kafka", self.kafka_wait.check)
        self._producer = make_producer(settings)
        self._catalog = Catalog(settings)
        self.name = f"{socket.gethostname()}/{os.getpid()}"[:256]
        self._seen_at = float("-inf")
        self.renewal = Renewal()
        self.membership = Membership()

    # -- the store, retried while it is away -------------------------------------------

    def _retry(self, what: Callable[[], object], stop: threading.Event) -> bool:
        """Run `what` until it succeeds; False only when stopping first."""
        pause = 0.2
        while not stop.is_set():
            try:
                what()
            except (OperationalError, DBAPIError) as exc:
                self.metrics.store_errors.inc()
                self.store_wait.waiting(exc)
                self.health.beat()
                stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            self.store_wait.ok()
            return True
        return False

    def migrate(self, stop: threading.Event) -> bool:
        return self._retry(lambda: migrate(self.engine), stop)

    def apply(self, batch: Sequence[Rec], stop: threading.Event) -> Applied | None:
        """Apply one batch, retrying while the store is away; None when stopped first."""
        result: list[Applied] = []

        def once() -> None:
            with self.engine.begin() as conn:
                applied = apply_batch(conn, batch)
                if applied.invalid:
                    # acknowledged before the transaction that moves past them commits
                    self._dead_letters(applied.invalid, stop)
            result.append(applied)

        started = time.perf_counter()
        if not self._retry(once, stop):
            return None
        applied = result[-1]
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        for table, n in applied.applied.items():
            self.metrics.rows.labels(table=table).inc(n)
        self.metrics.skipped.inc(applied.skipped)
        return applied

    def _dead_letters(self, invalid: list[tuple[Rec, str]], stop: threading.Event) -> None:
        for rec, error in invalid:
            letter = dead_letter(None, source=rec.topic, partition=rec.partition,
                                 offset=rec.offset, value=rec.value, reason="validation",
                                 error=error, stage="projector", worker="projector")  # fmt: skip
            self._producer.produce(self._catalog.name("deadletter"), letter)
            self.metrics.dead_letters.labels(topic=rec.topic, reason="validation").inc()
        flush_acknowledged(self._producer, self.kafka_wait, self.health.beat, stop,
                           "dead letters")  # fmt: skip

    def _seen(self, consumer: Consumer) -> bool:
        """Every SEEN_EVERY_S, once the broker answered: that this projector heard from
        Kafka now, and how many records its partitions held beyond what it has read (by
        the high watermarks its fetches brought, no extra round trip). True when the
        consumer has not heard the broker, or been out of its group, for long enough to
        be replaced (renewal.py)."""
        now = time.monotonic()
        if now - self._seen_at < SEEN_EVERY_S:
            return False
        self._seen_at = now  # tried or not, not again before the next interval
        try:
            consumer.list_topics(self.topics.names[0], timeout=2)
            assigned = consumer.assignment()
            behind = 0
            for tp in consumer.position(assigned) if assigned else []:
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    behind += max(high - tp.offset, 0)
        except KafkaException:
            # no word from Kafka: the store's freshness ages, as it should
            return self.renewal.failed()
        if self.membership.absent(consumer):
            # the broker answers, but nothing is projected: the freshness ages too
            self.kafka_wait.waiting(OUT_OF_GROUP)
            return self.renewal.failed()
        self.renewal.ok()
        self.kafka_wait.progressed()  # an idle projector's word that Kafka is back
        try:
            with self.engine.begin() as conn:
                record_seen(conn, self.name, datetime.now(UTC), behind)
        except (OperationalError, DBAPIError):
            pass  # the store away: the batches wait it out and say so
        return False

    # -- the consumer ------------------------------------------------------------------

    def _records(self, consumer: Consumer) -> list[Rec]:
        out = []
        by_name = self.topics.by_name
        for msg in consumer.consume(num_messages=self.batch, timeout=WAIT_S):
            if msg.error():
                self.kafka_wait.waiting("the broker (fetch)", msg.error())
                continue
            topic = msg.topic() or ""
            kind = by_name.get(topic)
            if kind is None:
                continue
            out.append(Rec(kind, topic, msg.partition() or 0, msg.offset() or 0,
                           msg.value() or b""))  # fmt: skip
        if out:
            self.kafka_wait.progressed()
            # counted per batch: a counter per record costs more than the record's row
            for kind, n in Counter(r.kind for r in out).items():
                self.metrics.records_processed.labels(topic=kind).inc(n)
        return out

    def _on_assign(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        try:
            with self.engine.connect() as conn:
                stored = stored_offsets(conn, topics=self.topics.names)
        except (OperationalError, DBAPIError) as exc:
            # from the beginning: what the store holds already is skipped by offset
            self.store_wait.waiting(exc)
            stored = {}
        for tp in tps:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(tps)
        self.membership.assigned()
        log.info("projector_assigned", partitions=len(tps))

    def _on_revoke(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        self.membership.lost()  # until the rebalance assigns again

    def run(self, stop: threading.Event) -> None:
        """Project until `stop` is set; a batch under way is finished first."""
        if not self.migrate(stop):
            return
        consumer = self._subscribed()
        try:
            while not stop.is_set():
                self.health.beat()
                batch = self._records(consumer)
                if batch and self.apply(batch, stop) is None:
                    return
                if self._seen(consumer):
                    # deaf to a broker that may well answer others: a new consumer
                    # rejoins and starts where the store says, as after any rebalance
                    log.warning("consumer_replaced", reason="no answer from the broker, or "
                                f"out of its group, for {self.renewal.after_s:g} s")  # fmt: skip
                    consumer.close()
                    consumer = self._subscribed()
        finally:
            consumer.close()
            self._producer.flush(5)

    def _subscribed(self) -> Consumer:
        consumer = make_consumer(self.settings, self.group_id, **{
            "enable.auto.offset.store": False,
            # a store outage longer than this gives the partitions to another projector;
            # its transactions and ours are fenced by the stored offsets
            "max.poll.interval.ms": 600_000,
        })  # fmt: skip
        consumer.subscribe(self.topics.names, on_assign=self._on_assign,
                           on_revoke=self._on_revoke)  # fmt: skip
        self.membership.renewed()
        return consumer

    def rebuild(self, stop: threading.Event) -> int:
        """Empty the store and project every topic from its beginning up to the end it
        has now. Run with the projector stopped. Returns the records read."""
        if not self.migrate(stop):
            return 0
        self._retry(lambda: _clear(self.engine), stop)
        consumer = make_consumer(self.settings, f"{self.group_id}-rebuild")
        ends: dict[tuple[str, int], int] = {}
        tps: list[TopicPartition] = []
        for name in self.topics.names:
            meta = consumer.list_topics(name, timeout=10).topics[name]
            for p in meta.partitions:
                low, high = watermarks(consumer, TopicPartition(name, p), 10)
                if high > low:
                    ends[(name, p)] = high
                    tps.append(TopicPartition(name, p, OFFSET_BEGINNING))
        consumer.assign(tps)
        read = 0
        try:
            while ends and not stop.is_set():
                batch = self._records(consumer)
                if not batch:
                    continue
                self.apply(batch, stop)
                read += len(batch)
                for r in batch:
                    if ends.get((r.topic, r.partition), 0) <= r.offset + 1:
                        ends.pop((r.topic, r.partition), None)
                # transaction markers sit past the last record: ask where we are
                for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
                    if tp.offset >= 0 and ends.get((tp.topic, tp.partition), 0) <= tp.offset:
                        ends.pop((tp.topic, tp.partition), None)
        finally:
            consumer.close()
        return read


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        clear(conn)
