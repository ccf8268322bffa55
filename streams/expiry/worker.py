"""The expiry worker: resolves the firing alerts whose ``ends_at`` passed without a
re-send, as Alertmanager's resolve timeout does (processors/expiry/leases.py decides).

Where the state lives: nowhere but the `alerts` topic. The worker joins a consumer group
on `alerts` only to share its partitions with its replicas (alerts are keyed by
fingerprint, so one owner per alert); it commits nothing. On every assignment it reads
each partition again from ``max_lease`` (one hour) before now, which holds every live
lease, and decides nothing on a partition before it has read it to its end once. So a
crash or a rebalance loses no lease; an expiry decided twice (once before a crash, once
after) is the same event id, which the agents apply once; and the worker's own resolved
transitions, read back, end their leases.

A resolved transition is written to `alerts` (key: the fingerprint) and its lease ends
only once Kafka acknowledged it; one that failed is due again at the next turn. While
Kafka is away it waits in the producer, which gives up on no message: one copy per
decision reaches the topic, however long the outage.

Kafka clients that stop hearing a broker that is back (seen after broker restarts) are
what the worker's waits are for: a consumer that fails every request, or answers but
stays out of its group, is replaced (renewal.py: `Hearing`) and its partitions re-read; a producer
that has had transitions outstanding for `ACK_WAIT_S` with no acknowledgement is a
wait, which the stuck-client guard turns into a restart once the cluster is seen serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from prometheus_client import Counter, Gauge

from processors.expiry.leases import MAX_LEASE, Expiry, Leases
from schemas import Alert, DecodeError, decode, encode
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import KafkaWait, make_consumer, make_producer
from streams.metrics import WorkerMetrics
from streams.runtime.renewal import Hearing, Membership
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
LOOKUP_ATTEMPTS = 30
# transitions outstanding this long with no acknowledgement: the producer is waiting
# (an outage, or a producer stuck after one; the guard tells them apart)
ACK_WAIT_S = 30.0


class ExpiryMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.resolved = Counter("tocsin_expiry_resolved_total",
                                "Firing alerts resolved because they were not sent again "
                                "before their end.", registry=self.registry)  # fmt: skip
        self.leases = Gauge("tocsin_expiry_leases", "Firing alerts held until their end.",
                            registry=self.registry)  # fmt: skip


class ExpiryWorker:
    def __init__(self, settings: KafkaSettings, max_lease: timedelta = MAX_LEASE,
                 metrics: ExpiryMetrics | None = None, health: Health | None = None,
                 clock: Callable[[], float] = time.time,
                 group: str | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.topic = Catalog(settings).name("alerts")
        self.group = group or f"{settings.topic_prefix}tocsin-expiry"
        self.max_lease = max_lease
        self.metrics = metrics or ExpiryMetrics()
        self.health = health or Health()
        self.clock = clock
        self._leases: dict[int, Leases] = {}
        self._replaying: set[int] = set()  # partitions not yet read up to their end
        self.kafka_wait = KafkaWait("expiry")
        self.producer_wait = KafkaWait("expiry/producer")
        self.hearing = Hearing(self.kafka_wait, membership=Membership())
        self._outstanding = 0  # transitions produced and not yet reported on
        self._heard_at = 0.0  # the last delivery report, or when the first went out
        self.health.add_check("expiry", self._ready)
        self.health.add_check("kafka", self.kafka_wait.check)
        self.health.add_check("kafka_producer", self.producer_wait.check)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _ready(self) -> tuple[bool, str]:
        if self._replaying:
            return False, f"re-reading {len(self._replaying)} partition(s) of {self.topic}"
        return True, f"{sum(len(x) for x in self._leases.values())} leases"

    def run(self, stop: threading.Event) -> None:
        consumer = self._subscribed()
        producer = make_producer(self.settings, **{"message.timeout.ms": 0})
        log.info("expiry_started", topic=self.topic, max_lease_s=self.max_lease.total_seconds())
        try:
            while not stop.is_set():
                self.health.beat()
                for msg in consumer.consume(500, timeout=0.5):
                    self._read(msg)
                self._expire(producer)
                self._acknowledgements()
                if self.hearing.due() and (reason := self.hearing.probe(consumer, self.topic)):
                    consumer = self._replaced(consumer, reason)
        finally:
            consumer.close()
            producer.flush(5)

    def _subscribed(self) -> Consumer:
        consumer = make_consumer(self.settings, self.group, **{"enable.partition.eof": True})
        consumer.subscribe([self.topic], on_assign=self._assign, on_revoke=self._revoke)
        self.hearing.renewed()
        return consumer

    def _replaced(self, consumer: Consumer, reason: str) -> Consumer:
        """A new consumer rejoins the group; every partition it is given is re-read from
        `max_lease` before now, as on any assignment, so no lease is lost."""
        log.warning("consumer_replaced", reason=reason[:300])
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as err:
            log.info("consumer_close_failed", error=str(err)[:300])
        self._leases.clear()
        self._replaying.clear()
        return self._subscribed()

    def _acknowledgements(self) -> None:
        if self._outstanding and time.monotonic() - self._heard_at >= ACK_WAIT_S:
            self.producer_wait.waiting("Kafka's acknowledgement of resolved alerts")

    def _assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        for tp, offset in zip(parts, self._replay_from(consumer, parts), strict=True):
            tp.offset = offset
            self._leases[tp.partition] = Leases(self.max_lease)
            self._replaying.add(tp.partition)  # until its end is reached (partition EOF)
        consumer.assign(parts)
        if self.hearing.membership is not None:
            self.hearing.membership.assigned()
        log.info("expiry_assigned", partitions=[p.partition for p in parts])

    def _replay_from(self, consumer: Consumer, parts: list[TopicPartition]) -> list[int]:
        """The first offset of each partition within ``max_lease`` of now; the partitions'
        start when the cluster cannot say (a leader being elected): slower, as correct."""
        since = int((self.clock() - self.max_lease.total_seconds() - 60) * 1000)
        wanted = [TopicPartition(p.topic, p.partition, since) for p in parts]
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                found = consumer.offsets_for_times(wanted, timeout=10)
                return [at.offset if at.offset >= 0 else OFFSET_END for at in found]
            except KafkaException as exc:
                log.warning("expiry_offsets_lookup_failed", attempt=attempt, error=str(exc))
                time.sleep(1)
        return [OFFSET_BEGINNING] * len(parts)

    def _revoke(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        for tp in parts:
            self._leases.pop(tp.partition, None)
            self._replaying.discard(tp.partition)
        consumer.unassign()
        if self.hearing.membership is not None:
            self.hearing.membership.lost()  # until the rebalance assigns again

    def _read(self, msg: Any) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                self._replaying.discard(msg.partition())
            else:
                self.hearing.fetch_failed(err)
            return
        leases = self._leases.get(msg.partition())
        if leases is None:
            return
        try:
            alert = decode(Alert, msg.value() or b"")
        except DecodeError:
            return  # the agents dead-letter it: nothing to expire
        kind, stamp = msg.timestamp()
        received = datetime.fromtimestamp(stamp / 1000, UTC) if kind and stamp > 0 else self._now()
        leases.observe(alert, received)

    def _expire(self, producer: Producer) -> None:
        producer.poll(0)  # the delivery reports of transitions written in earlier turns
        now = self._now()
        due: list[tuple[Leases, Expiry]] = [
            (leases, e) for part, leases in self._leases.items()
            if part not in self._replaying for e in leases.due(now)
        ]  # fmt: skip
        self.metrics.leases.set(sum(len(x) for x in self._leases.values()))
        for i, (leases, e) in enumerate(due):
            try:
                producer.produce(self.topic, key=e.fingerprint.encode(),
                                 value=encode(e.transition),
                                 on_delivery=self._reported(leases, e))  # fmt: skip
                if not self._outstanding:
                    self._heard_at = time.monotonic()
                self._outstanding += 1
            except BufferError:
                # the producer's queue is full (Kafka away for long): the rest next turn
                for rest, later in due[i:]:
                    rest.retry(later)
                return

    def _reported(self, leases: Leases, e: Expiry) -> Callable[[KafkaError | None, Any], None]:
        """The lease ends once Kafka acknowledged its transition; a transition that failed
        is due again. Until then it waits in the producer, across an outage: written once,
        not once more every turn (they would all arrive when Kafka is back)."""

        def delivered(err: KafkaError | None, _: Any) -> None:
            self._outstanding -= 1
            self._heard_at = time.monotonic()
            self.producer_wait.progressed()  # a report, even a failure: the producer hears
            if err is not None:
                log.warning("expiry_write_failed", fingerprint=e.fingerprint, error=str(err))
                leases.retry(e)
                return
            leases.expired(e)
            self.metrics.resolved.inc()
            log.info("alert_expired", fingerprint=e.fingerprint, rule=e.transition.rule,
                     ends_at=e.ends.isoformat())  # fmt: skip

        return delivered
