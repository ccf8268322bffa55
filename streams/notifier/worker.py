"""`tocsin run notifier`: deliver the outbox, record every attempt, never drop one.

Per batch: each new notification (not already delivered: ids are deterministic, the
delivered set is persisted) goes to its sink with retries (exponential backoff with
jitter, Retry-After honoured), a circuit breaker per destination and a bound on
in-flight requests. Every attempt becomes a DeliveryReceipt on `receipts`. One that
still fails after its attempts goes back onto `notifications` for later (a retry
topic pattern: it neither blocks its partition nor disappears). Offsets are committed
only after the receipts, the delivered marks and any re-enqueued records are
acknowledged by Kafka: a crash re-reads the batch and the delivered set skips what
was done.

Replicas share the outbox through the consumer group. The delivered set and each
incident's Slack message are kept per outbox partition (`NotifierState`): loaded when
the group assigns a partition, before any of its records is consumed, and dropped when
it is revoked, so a partition's new owner knows what every earlier owner recorded. The
Slack sink updates the message recorded there and searches Slack only for what an
owner that died may have sent without recording it.

With the broker away the notifier keeps running: receipts and marks wait in the
producer's queue for as long as it takes (no delivery timeout: one given up would be
lost once the offsets are committed), the commit is retried, every wait is bounded
so the loop stays live, readiness is false, and the log says what it waits for.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from threading import Event

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Histogram

from connectors.sinks.delivery import Breaker, Delivery, RetryPolicy, Sink
from schemas import DecodeError, DeliveryReceipt, Notification, decode, encode
from schemas.errors import TocsinError
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import (
    IdleProbe,
    KafkaWait,
    commit_consumed,
    flush_acknowledged,
    make_consumer,
    make_producer,
)
from streams.metrics import LagReporter, WorkerMetrics
from streams.notifier.state import NotifierState
from streams.runtime.deadletters import DeadLetterSink
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


class NotifierMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.sent = Counter("tocsin_notifications_sent_total", "Delivered notifications.",
                            ["channel"], registry=r)  # fmt: skip
        self.failed = Counter("tocsin_notifications_failed_total", "Failed attempts.",
                              ["channel", "error"], registry=r)  # fmt: skip
        self.retried = Counter("tocsin_notifications_retried_total", "Retries and re-enqueues.",
                               ["channel"], registry=r)  # fmt: skip
        self.duplicates = Counter("tocsin_notifications_duplicate_total",
                                  "Already delivered, skipped.", registry=r)  # fmt: skip
        self.latency = Histogram("tocsin_slack_api_seconds", "Latency of sink calls.",
                                 ["channel"], registry=r)  # fmt: skip


class Notifier:
    def __init__(self, settings: KafkaSettings, sinks: dict[str, Sink], *,
                 metrics: NotifierMetrics | None = None, health: Health | None = None,
                 retry: RetryPolicy | None = None, in_flight: int = 32,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:  # fmt: skip
        self.settings = settings
        self.catalog = Catalog(settings)
        self.sinks = sinks
        self.metrics = metrics or NotifierMetrics()
        self.health = health or Health()
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.limit = asyncio.Semaphore(in_flight)
        self.breakers: dict[str, Breaker] = {}
        self.parked: dict[tuple[str, str, str], str] = {}  # lane -> notification id awaited
        self.producer = make_producer(settings, **{"message.timeout.ms": 0})
        self.wait = KafkaWait("notifier")
        self._stop = Event()
        # a crashed notifier's partitions move to a survivor within 10 s, not 45 s
        self.consumer = make_consumer(settings, f"{settings.topic_prefix}notifier",
                                      **{"session.timeout.ms": 10_000,
                                         "heartbeat.interval.ms": 2_000,
                                         # a read_committed fetch can park at the broker
                                         # for this long before a fresh commit shows
                                         "fetch.wait.max.ms": 20})  # fmt: skip
        self.lag = LagReporter(self.consumer, self.metrics.lag)
        self._probe = IdleProbe(self.consumer, self.catalog.name("notifications"), self.wait)
        self.state = NotifierState(
            self.producer, self.catalog.name("notifier-partition-state"),
            self.catalog.name("notifications"), settings=settings,
            retention_s=self.catalog.get("notifications").spec.retention_ms / 1000,
            legacy=settings.topic("notifier-state"),
        )  # fmt: skip
        self.dlq = DeadLetterSink(self.producer, self.catalog.name("deadletter"), self.metrics,
                                  worker="notifier")  # fmt: skip
        self.joined = False
        self.health.add_check("group", lambda: (self.joined, "assigned" if self.joined
                                                else "not yet in the consumer group"))  # fmt: skip
        self.health.add_check("kafka", self.wait.check)

    def run(self, stop: Event) -> None:
        """One event loop for the worker's life: pooled HTTP clients stay on their loop."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: Event) -> None:
        self._stop = stop
        log.info("notifier_started", sinks=sorted(self.sinks))
        self.consumer.subscribe([self.catalog.name("notifications")], on_assign=self._assigned,
                                on_revoke=self._revoked, on_lost=self._revoked)  # fmt: skip
        try:
            while not stop.is_set():
                # block for the first record only, then take what is already fetched:
                # consume(n, timeout) waits for n records or the timeout, which would add
                # up to the whole timeout to every page at low load
                msgs = self.consumer.consume(1, timeout=0.2)
                if msgs:
                    msgs += self.consumer.consume(199, timeout=0)
                self.health.beat()
                if msgs:
                    await self._batch(msgs)
                else:
                    self._probe()
                self.lag.maybe_report()
        except _Stopping:
            pass  # stopped while loading a partition's state: nothing of it was consumed
        finally:
            self.producer.flush(30)
            self.consumer.close()

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before any record of a newly assigned partition is consumed, its state (what
        earlier owners delivered, the Slack message of each incident) is loaded; a
        broker away is waited out like every other Kafka call."""
        owned = [tp.partition for tp in partitions]
        while True:
            try:
                self.state.assign(owned)
                break
            except KafkaException as exc:
                if self._stop.is_set():
                    raise _Stopping from exc
                self.wait.waiting("the broker (notifier state)", exc.args[0] if exc.args else exc)
                self.health.beat()
                self._stop.wait(1.0)
        self.wait.progressed()
        self.joined = True
        log.info("notifier_partitions_assigned", partitions=self.state.owned())

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Revoked between batches (everything consumed was committed): the next owner
        loads what this replica recorded; a lane parked here is its business now."""
        gone = {tp.partition for tp in partitions}
        self.parked = {k: v for k, v in self.parked.items()
                       if self.state.home(k[0]) not in gone}  # fmt: skip
        self.state.revoke(gone)
        log.info("notifier_partitions_revoked", partitions=sorted(gone))

    async def _batch(self, msgs: list[Message]) -> None:
        todo: list[tuple[Notification, str]] = []
        batch_ids: set[str] = set()
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    # the broker away: librdkafka reconnects; said once a while
                    self.wait.waiting("the broker (fetch)", err)
                continue
            try:
                n = decode(Notification, msg.value() or b"")
            except DecodeError as exc:
                self.dlq.send(msg, reason=exc.reason, error=str(exc))
                continue
            fresh = self.state.admit(msg.partition() or 0, msg.offset() or 0,
                                     n.notification_id, n.incident_id)  # fmt: skip
            if not fresh or n.notification_id in batch_ids:
                self.metrics.duplicates.inc()
                continue
            batch_ids.add(n.notification_id)
            todo.append((n, f"{msg.partition()}:{msg.offset()}"))
        # one incident's messages to one destination go in order (post, then update...);
        # different destinations and incidents go concurrently
        lanes: dict[tuple[str, str, str], list[tuple[Notification, str]]] = {}
        for n, where in todo:
            lanes.setdefault(_lane_key(n), []).append((n, where))
        await asyncio.gather(*(self._lane(lane) for lane in lanes.values()))
        # receipts and re-enqueued records acknowledged, then the delivered marks, and
        # only then do the offsets move
        flush_acknowledged(self.producer, self.wait, self.health.beat, self._stop, "receipts")
        if self.state.write_marks():
            flush_acknowledged(self.producer, self.wait, self.health.beat, self._stop,
                               "delivered marks")  # fmt: skip
        commit_consumed(self.consumer, self.wait, self.health.beat, self._stop)

    async def _lane(self, lane: list[tuple[Notification, str]]) -> None:
        """One incident's notifications to one destination, strictly in outbox order.

        When one goes back on the outbox, the lane is parked behind it: everything after
        it (in this batch or later ones) is put back too, until it comes round again;
        otherwise an update could post the message and the late trigger overwrite it
        with a stale status.
        """
        key = _lane_key(lane[0][0])
        for i, (n, where) in enumerate(lane):
            parked = self.parked.get(key)
            if parked is not None and parked != n.notification_id:
                self._requeue(n)
                continue
            self.parked.pop(key, None)
            if not await self._deliver(n, where):
                self.parked[key] = n.notification_id
                for later, _ in lane[i + 1 :]:
                    self._requeue(later)
                return

    async def _deliver(self, n: Notification, where: str = "") -> bool:
        """True once settled (delivered, or failed for good); False when put back on the
        outbox. ``where`` (partition:offset of the outbox record) tells a re-enqueued
        round's receipts apart from the first round's; a crash-replay re-emits the same."""
        sink = self.sinks.get(n.channel) or self.sinks.get("*")
        destination = f"{n.channel}:{n.target}"
        breaker = self.breakers.setdefault(destination, Breaker())
        for attempt in range(1, self.retry.attempts + 1):
            if sink is None:
                self._receipt(
                    n, where, attempt, Delivery(ok=False, error=f"no sink for {n.channel}")
                )
                self.state.mark_done(n.notification_id)  # final: a configuration problem
                return True
            wait = breaker.wait(time.monotonic())
            if wait > 0:  # open: no request to a destination known to be down
                await self.sleep(min(wait, self.retry.cap_s))
            async with self.limit:
                started = time.perf_counter()
                result = await sink.deliver(n)
                self.metrics.latency.labels(channel=n.channel).observe(
                    time.perf_counter() - started
                )
            breaker.record(result.ok, time.monotonic())
            self._receipt(n, where, attempt, result)
            if result.ok:
                self.state.mark_done(n.notification_id)
                self.metrics.sent.labels(channel=n.channel).inc()
                return True
            code = str(result.status_code) if result.status_code else "network"
            self.metrics.failed.labels(channel=n.channel, error=code).inc()
            if not result.retryable:
                self.state.mark_done(n.notification_id)  # final: recorded, not retried forever
                return True
            self.metrics.retried.labels(channel=n.channel).inc()
            await self.sleep(self.retry.delay(attempt, result.retry_after))
        self._requeue(n)
        return False

    def _requeue(self, n: Notification) -> None:
        """Still failing: back on the outbox for later, never dropped; onto the partition
        it came from, whose owner holds the incident's state and keeps its order."""
        home = self.state.home(n.incident_id)
        self.producer.produce(self.catalog.name("notifications"), key=n.incident_id.encode(),
                              value=encode(n), partition=-1 if home is None else home)  # fmt: skip

    def _receipt(self, n: Notification, where: str, attempt: int, d: Delivery) -> None:
        outcome = "delivered" if d.ok else ("retrying" if d.retryable else "failed")
        receipt = DeliveryReceipt(
            # deterministic: a batch re-read after a crash re-emits the same receipt ids
            event_id=hashlib.sha256(f"{n.notification_id}@{where}#{attempt}".encode()).hexdigest()[:32],
            notification_id=n.notification_id, incident_id=n.incident_id, channel=n.channel,
            target=n.target, attempt=attempt, outcome=outcome, status_code=d.status_code,
            error=d.error[:8000], external_ref=d.external_ref, latency_ms=d.latency_ms,
            at=datetime.now(UTC),
        )  # fmt: skip
        self.producer.produce(self.catalog.name("receipts"), key=n.incident_id.encode(),
                              value=encode(receipt))  # fmt: skip
        # the last link of sample -> alert -> incident -> notification -> delivery
        (log.info if d.ok else log.warning)(
            "notification_" + outcome, notification_id=n.notification_id,
            incident_id=n.incident_id, channel=n.channel, target=n.target, kind=n.kind,
            attempt=attempt, external_ref=d.external_ref, status_code=d.status_code,
            latency_ms=round(d.latency_ms, 1),
            error=d.error[:300] or None, receipt_id=receipt.event_id,
        )  # fmt: skip


class _Stopping(TocsinError):
    """Stopped while waiting for a partition's state: leave without consuming it."""


def _lane_key(n: Notification) -> tuple[str, str, str]:
    return (n.incident_id, n.channel, n.target)
