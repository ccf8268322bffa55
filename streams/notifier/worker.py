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

It runs on the runtime's at-least-once loop (streams/runtime/at_least_once.py), which
loads a partition's state through `on_assign` before handing over any of its records,
flushes the receipts and re-enqueued records, lets the notifier write its delivered
marks (`acknowledged`), flushes those, and only then commits; with the broker away it
keeps running: receipts and marks wait in the producer's queue for as long as it takes
(no delivery timeout: one given up would be lost once the offsets are committed).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from threading import Event

import structlog
from prometheus_client import Counter, Histogram

from connectors.sinks.delivery import Breaker, Delivery, RetryPolicy, Sink
from schemas import DecodeError, DeliveryReceipt, Notification, decode, encode
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import make_producer
from streams.metrics import WorkerMetrics
from streams.notifier.state import NotifierState
from streams.runtime.at_least_once import AtLeastOnceLoop
from streams.runtime.deadletters import DeadLetterSink
from streams.runtime.produce import produce
from streams.runtime.records import TP, Assigned, Run
from streams.runtime.worker import Outputs
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
        self.topics = [self.catalog.name("notifications")]
        self.state = NotifierState(
            self.producer, self.catalog.name("notifier-partition-state"),
            self.catalog.name("notifications"), settings=settings,
            retention_s=self.catalog.get("notifications").spec.retention_ms / 1000,
            legacy=settings.topic("notifier-state"),
        )  # fmt: skip
        self.dlq = DeadLetterSink(self.producer, self.catalog.name("deadletter"), self.metrics,
                                  worker="notifier")  # fmt: skip
        self.loop = AtLeastOnceLoop(
            settings, self, name="notifier", group_id=f"{settings.topic_prefix}notifier",
            producer=self.producer, health=self.health, metrics=self.metrics,
            lag=self.metrics.lag, batch=200, block_s=0.2, outputs="receipts", stateful=True,
            # a crashed notifier's partitions move to a survivor within 10 s, not 45 s
            consumer_conf={"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000,
                           # a read_committed fetch can park at the broker for this
                           # long before a fresh commit shows
                           "fetch.wait.max.ms": 20},
        )  # fmt: skip
        self.wait = self.loop.wait

    def run(self, stop: Event) -> None:
        """One event loop for the worker's life: pooled HTTP clients stay on their loop."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: Event) -> None:
        log.info("notifier_started", sinks=sorted(self.sinks))
        await self.loop.run(stop)

    # -- the runtime's worker protocol ---------------------------------------------

    def on_assign(self, partitions: list[Assigned]) -> None:
        """Before any record of a newly assigned partition is handed over, its state
        (what earlier owners delivered, the Slack message of each incident) is loaded;
        the loop waits out a broker that is away and tries again."""
        self.state.assign([p.partition for p in partitions])
        log.info("notifier_partitions_assigned", partitions=self.state.owned())

    def on_revoke(self, partitions: list[TP]) -> None:
        """Revoked between batches (everything consumed was committed): the next owner
        loads what this replica recorded; a lane parked here is its business now."""
        gone = {partition for _, partition in partitions}
        self.parked = {k: v for k, v in self.parked.items()
                       if self.state.home(k[0]) not in gone}  # fmt: skip
        self.state.revoke(gone)
        log.info("notifier_partitions_revoked", partitions=sorted(gone))

    def acknowledged(self) -> int:
        """The batch's receipts are acknowledged: now its delivered marks may go (and,
        now and then, the tombstones of what is too old to be needed)."""
        return self.state.write_marks() + self.state.sweep()

    async def process(self, runs: list[Run], out: Outputs) -> None:
        todo: list[tuple[Notification, str]] = []
        batch_ids: set[str] = set()
        for _, run in runs:
            for msg in run:
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
        # the loop then waits for the receipts and re-enqueued records, then the
        # delivered marks (acknowledged), and only then do the offsets move

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
        produce(self.producer, self.catalog.name("notifications"), encode(n),
                n.incident_id.encode(), -1 if home is None else home,
                beat=self.health.beat)  # fmt: skip

    def _receipt(self, n: Notification, where: str, attempt: int, d: Delivery) -> None:
        outcome = "delivered" if d.ok else ("retrying" if d.retryable else "failed")
        receipt = DeliveryReceipt(
            # deterministic: a batch re-read after a crash re-emits the same receipt ids
            event_id=hashlib.sha256(f"{n.notification_id}@{where}#{attempt}".encode()).hexdigest()[:32],
            tenant=n.tenant, notification_id=n.notification_id, incident_id=n.incident_id,
            channel=n.channel,
            target=n.target, attempt=attempt, outcome=outcome, status_code=d.status_code,
            error=d.error[:8000], external_ref=d.external_ref, latency_ms=d.latency_ms,
            at=datetime.now(UTC),
        )  # fmt: skip
        produce(self.producer, self.catalog.name("receipts"), encode(receipt),
                n.incident_id.encode(), beat=self.health.beat)  # fmt: skip
        # the last link of sample -> alert -> incident -> notification -> delivery
        (log.info if d.ok else log.warning)(
            "notification_" + outcome, notification_id=n.notification_id,
            incident_id=n.incident_id, channel=n.channel, target=n.target, kind=n.kind,
            attempt=attempt, external_ref=d.external_ref, status_code=d.status_code,
            latency_ms=round(d.latency_ms, 1),
            error=d.error[:300] or None, receipt_id=receipt.event_id,
        )  # fmt: skip


def _lane_key(n: Notification) -> tuple[str, str, str]:
    return (n.incident_id, n.channel, n.target)
