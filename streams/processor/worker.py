"""`tocsin run processor`: rule engines over `metrics` and `logs`, exactly once.

The rules worker holds one engine per input partition and runs on the runtime's
exactly-once loop (streams/runtime/exactly_once.py), which commits its outputs (alert
transitions, late and dead-letter records, engine checkpoints) in one Kafka
transaction with the consumer offsets. When it is assigned a partition - at start, on a
rebalance, or when the loop rewinds after a failed transaction - it restores the
partition's last checkpoint and replays the input up to the committed offset with
outputs suppressed; the engine being deterministic, what follows writes what the first
run wrote, so the transitions are exactly those an uninterrupted run would have
produced: none lost, none duplicated.
"""

from __future__ import annotations

import gc
import os
import time
from threading import Event

import structlog
from confluent_kafka import Message

from processors.rules.engine import RuleEngine
from schemas import Alert, encode
from schemas.rules import RuleFile
from streams.catalog import Catalog
from streams.health import Health
from streams.logs import Throttle
from streams.processor.checkpoint import encode_checkpoint
from streams.processor.feed import (
    CAPPED_REASON,
    FAILED,
    FUTURE,
    INVALID,
    IS_LATE,
    OVERFLOW,
    Verdict,
    feed_logs,
    feed_metrics,
)
from streams.processor.metrics import ProcessorMetrics
from streams.processor.restore import StateRestorer
from streams.runtime.deadletters import DeadLetterSink
from streams.runtime.exactly_once import ExactlyOnceLoop
from streams.runtime.records import TP, Assigned, Run
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


class RulesWorker:
    """The engines of the input partitions this worker holds (a TransactionalWorker)."""

    def __init__(self, settings: KafkaSettings, pack: RuleFile, *, group_id: str, name: str,
                 metrics: ProcessorMetrics, health: Health,
                 checkpoint_every_s: float) -> None:  # fmt: skip
        self.pack, self.group_id, self.name, self.metrics = pack, group_id, name, metrics
        catalog = Catalog(settings)
        self.feeds = {catalog.name("metrics"): feed_metrics, catalog.name("logs"): feed_logs}
        self.topics = list(self.feeds)
        self.alerts_topic = catalog.name("alerts")
        self.late_topic = catalog.name("late")
        self.deadletter_topic = catalog.name("deadletter")
        self.state_topic = catalog.name("processor-state")
        self.checkpoint_every_s = checkpoint_every_s
        self.restorer = StateRestorer(settings, group_id, pack, self.feeds, self.state_topic,
                                      metrics, beat=health.beat)  # fmt: skip
        self.engines: dict[TP, RuleEngine] = {}
        self._pending: list[Alert] = []  # transitions of the open transaction
        self._dlq: DeadLetterSink | None = None
        self._skew = pack.settings.max_future_skew
        self._last_checkpoint = time.monotonic()
        self._fault_log = Throttle(30.0)

    # -- partitions ---------------------------------------------------------------

    def on_assign(self, partitions: list[Assigned]) -> None:
        for p in partitions:
            self.engines[p.tp] = self.restorer.restore(p.topic, p.partition, p.committed)
        self.metrics.active_series.set(sum(e.series_count() for e in self.engines.values()))
        # restored engines are long-lived: move them out of the collector's sight, so a
        # full collection does not walk every accumulator (a tail-latency spike)
        gc.collect()
        gc.freeze()

    def on_revoke(self, partitions: list[TP]) -> None:
        for tp in partitions:
            self.engines.pop(tp, None)

    def committed(self) -> None:
        emitted, self._pending = self._pending, []
        for alert in emitted:  # transitions are rare: one line each, once committed
            log.info("alert_transition", alert_id=alert.event_id, tenant=alert.tenant,
                     fingerprint=alert.fingerprint, rule=alert.rule, status=alert.status,
                     labels=alert.labels, value=alert.value, threshold=alert.threshold,
                     window_end=alert.window_end and alert.window_end.isoformat())  # fmt: skip

    def aborted(self) -> None:
        self._pending.clear()

    # -- the batch ----------------------------------------------------------------

    def process(self, runs: list[Run], out: Outputs) -> None:
        touched: list[RuleEngine] = []
        engines, feeds, skew = self.engines, self.feeds, self._skew
        for key, run in runs:
            engine = engines[key]
            touched.append(engine)
            for msg, verdict in feeds[key[0]](engine, run, skew):
                self._route(msg, verdict, out)  # type: ignore[arg-type]  # a Message went in
        for engine in dict.fromkeys(touched):
            for alert in engine.advance():
                out.produce(self.alerts_topic, encode(alert), alert.fingerprint.encode())
                self.metrics.transitions.labels(rule=alert.rule, status=alert.status).inc()
                self._pending.append(alert)
            if engine.faults:
                self._report_faults(engine)
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s:
            self._checkpoint(out)

    def _route(self, msg: Message, verdict: Verdict, out: Outputs) -> None:
        if verdict.outcome == IS_LATE:
            out.produce(self.late_topic, msg.value(), msg.key())
            self.metrics.late.labels(topic=msg.topic() or "").inc()
            return
        if self._dlq is None:
            self._dlq = DeadLetterSink(out, self.deadletter_topic, self.metrics, self.name)
        if verdict.outcome in (OVERFLOW, FAILED):
            self._dlq.send(msg, reason=verdict.reason, error=verdict.error, stage="evaluate",
                           tenant=verdict.tenant)  # fmt: skip
            if verdict.reason == CAPPED_REASON:
                self.metrics.tenant_refused.labels(tenant=verdict.tenant).inc()
        elif verdict.outcome in (INVALID, FUTURE):
            self._dlq.send(msg, reason=verdict.reason, error=verdict.error, stage="validate",
                           tenant=verdict.tenant)  # fmt: skip

    def _checkpoint(self, out: Outputs) -> None:
        n = self.restorer.state_partitions()
        for p in out.positions():
            engine = self.engines.get((p.topic, p.partition))
            if engine is None:
                continue
            for key, value in encode_checkpoint(
                self.group_id, p.topic, p.partition, p.offset, engine.dump()
            ):
                out.produce(self.state_topic, value, key, partition=p.partition % n)
        self._last_checkpoint = time.monotonic()
        gc.freeze()  # series created since the last freeze are long-lived too
        engines = self.engines.values()
        self.metrics.active_series.set(sum(e.series_count() for e in engines))
        self.metrics.anomaly_bytes.set(sum(e.anomaly_memory_bytes() for e in engines))
        self.metrics.anomaly_series.set(sum(e.anomaly_series_count() for e in engines))

    def _report_faults(self, engine: RuleEngine) -> None:
        for rule, error in engine.faults:
            self.metrics.window_faults.labels(rule=rule).inc()
            if self._fault_log.held_back(rule) is not None:
                log.error("window_close_failed", rule=rule, error=error)
        engine.faults.clear()


class ProcessorWorker:
    """The rules worker on the exactly-once loop, with the processor's tuning."""

    def __init__(
        self,
        settings: KafkaSettings,
        pack: RuleFile,
        *,
        instance_id: str,
        group_id: str = "tocsin-processor",
        checkpoint_every_s: float = 10.0,
        batch_size: int = 20_000,
        max_wait_s: float = 0.02,
        commit_every_s: float = 1.0,
        commit_linger_s: float = 0.02,
        metrics: ProcessorMetrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.pack = pack
        self.metrics = metrics or ProcessorMetrics()
        self.health = health or Health()
        name = f"processor/{instance_id}"
        self.rules = RulesWorker(settings, pack, group_id=group_id, name=name,
                                 metrics=self.metrics, health=self.health,
                                 checkpoint_every_s=checkpoint_every_s)  # fmt: skip
        self.loop = ExactlyOnceLoop(
            settings, self.rules, name=name, group_id=group_id, instance_id=instance_id,
            metrics=self.metrics, health=self.health, batch_size=batch_size,
            max_wait_s=max_wait_s, commit_every_s=commit_every_s,
            commit_linger_s=commit_linger_s, commit_seconds=self.metrics.commit_seconds,
            consumer_conf={
                "max.poll.interval.ms": 600_000,
                "fetch.max.bytes": 64 * 1024 * 1024,
                # bounded prefetch: memory belongs to the engines, not to a 64 MB queue
                "queued.max.messages.kbytes": 16 * 1024,
            },
            producer_conf={
                # a transaction begun while the broker still writes the last one's
                # markers is refused (CONCURRENT_TRANSACTIONS) and retried after this
                # backoff: librdkafka's 100 ms default put 100-130 ms on such commits
                # (the Java client retries this case after 20 ms); librdkafka doubles it
                # on each retry, up to 1 s by default: a refusal lasting 40 ms cost 70 ms
                "retry.backoff.ms": 10,
                "retry.backoff.max.ms": 20,
                "linger.ms": 2,
                "compression.type": "lz4",
            },
        )  # fmt: skip

    def run(self, stop: Event) -> None:
        # engine state is acyclic plain objects: collect young garbage rarely, so the
        # collector does not rescan tens of thousands of live accumulators per batch
        gc.set_threshold(50_000, 20, 100)
        log.info("processor_started", rules=len(self.pack.rules), topics=self.rules.topics)
        try:
            self.loop.run(stop)
        finally:
            self.rules.restorer.close()
            log.info("processor_stopped")


def default_instance_id() -> str:
    """Stable across restarts of the same pod/host, so a restarted worker fences its
    predecessor's open transaction at once instead of waiting for it to time out."""
    return os.environ.get("TOCSIN_INSTANCE_ID") or os.environ.get("HOSTNAME") or "local"
