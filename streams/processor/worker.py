"""`tocsin run processor`: rule engines over `metrics` and `logs`, exactly once.

A batch that writes anything (alert transitions, late or dead-letter records, an
engine checkpoint) is committed at once, in one Kafka transaction with the consumer
offsets. A batch that writes nothing - nearly all of them: transitions are rare - leaves
its offsets for the next commit, at most `commit_every_s` later (or when the input goes
quiet): a transaction costs three broker round trips, and a batch that waits behind
another's commit waits for nothing. A crash at any instant aborts the open transaction;
the next owner of a partition restores the last checkpoint and replays the input up to
the committed offset with outputs suppressed, then processes the rest as anew. The
engine being deterministic, that rest writes what the first run wrote - nothing, if its
offsets were not committed - so the transitions are exactly those an uninterrupted run
would have produced: none lost, none duplicated.

A broker outage is ridden out in the process, by the same path: every Kafka call waits
at most CALL_TIMEOUT_S; a call that timed out is retried while the error is retriable
(a commit continues where it was), and anything else - an aborted or fenced
transaction, a failed restore, partitions lost with the session - aborts the open
transaction (or replaces a producer that can no longer abort), then restores every
assigned partition from its checkpoint and committed offset and seeks back there, as a
restarted worker would. Meanwhile the worker stays live, reports not ready and logs
what it waits for (see streams.kafka.KafkaWait).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Event

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from processors.rules.engine import RuleEngine
from schemas import Alert, TocsinError, encode
from schemas.rules import RuleFile
from streams.catalog import Catalog
from streams.deadletters import DeadLetterSink
from streams.health import Health
from streams.kafka import CALL_TIMEOUT_S, KafkaWait, make_consumer, make_producer, retriable
from streams.metrics import LagReporter
from streams.processor.checkpoint import encode_checkpoint
from streams.processor.feed import (
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
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

TP = tuple[str, int]
# fenced more often than this within the window: another instance has this instance id
FENCED_LIMIT, FENCED_WINDOW_S = 3, 600.0


class ConsumerFenced(TocsinError, KafkaException):
    """The consumer hit a fatal error (fenced from its group): it must be replaced."""


# a transactional call still blocked this long after its own timeout is given up on
STUCK_AFTER_S = 5.0
BROKER_STALE_S = 15.0  # readiness fails after this long without a broker round trip


class ProcessorWorker:
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
        self.settings = settings
        self.group_id = group_id
        self.pack = pack
        self.catalog = Catalog(settings)
        self.metrics = metrics or ProcessorMetrics()
        self.health = health or Health()
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.checkpoint_every_s = checkpoint_every_s
        self.commit_every_s = commit_every_s
        self.commit_linger_s = commit_linger_s
        self._txn_since: float | None = None  # monotonic time the open transaction began
        self._written = 0  # records the open transaction holds
        self._pending: list[Alert] = []  # its transitions, logged once committed
        self.topics = {
            self.catalog.name("metrics"): feed_metrics,
            self.catalog.name("logs"): feed_logs,
        }
        self.alerts_topic = self.catalog.name("alerts")
        self.late_topic = self.catalog.name("late")
        self.state_topic = self.catalog.name("processor-state")
        # static membership: a restarted instance (same id) takes its partitions back at
        # once instead of waiting for its dead predecessor's session to time out
        self._consumer_conf = {
            "group.instance.id": f"{group_id}-{instance_id}",
            "session.timeout.ms": 15_000,
            "partition.assignment.strategy": "range",
            "max.poll.interval.ms": 600_000,
            "fetch.max.bytes": 64 * 1024 * 1024,
            # bounded prefetch: memory belongs to the engines, not to a 64 MB queue
            "queued.max.messages.kbytes": 16 * 1024,
        }
        self.consumer = self._new_consumer()
        self._fenced: list[float] = []  # monotonic times the consumer was fenced
        self.wait = KafkaWait(f"processor/{instance_id}")
        self._stop = Event()
        self._in_txn = False  # a transaction begun and neither committed nor aborted
        # why the open transaction cannot be committed: it is aborted and every assigned
        # partition rewound to its committed offset before anything else is done
        self._trouble: str | None = None
        self._consumer_fenced = False
        self._producer_conf = {
            "transactional.id": f"{group_id}-{instance_id}",
            "transaction.timeout.ms": 30_000,
            # a transaction begun while the broker still writes the last one's markers
            # is refused (CONCURRENT_TRANSACTIONS) and retried after this backoff:
            # librdkafka's 100 ms default put 100-130 ms on such commits (the Java
            # client retries this case after 20 ms); librdkafka doubles it on each
            # retry, up to 1 s by default: a refusal lasting 40 ms cost 70 ms of waits
            "retry.backoff.ms": 10,
            "retry.backoff.max.ms": 20,
            "linger.ms": 2,
            "compression.type": "lz4",
        }
        self._worker_name = f"processor/{instance_id}"
        self.producer, self.dlq = self._new_producer()
        self.restorer = StateRestorer(
            settings, group_id, pack, self.topics, self.state_topic, self.metrics,
            beat=self.health.beat,
        )  # fmt: skip
        self.engines: dict[TP, RuleEngine] = {}
        self.assigned_once = False
        self._last_checkpoint = time.monotonic()
        self._skew = pack.settings.max_future_skew
        self._broker_ok_at = float("-inf")  # monotonic time of the last broker round trip
        self.health.add_check("kafka", self._broker_reachable)
        self.health.add_check("progress", self.wait.check)
        self.health.add_check("group", self._ready)

    def _new_consumer(self) -> Consumer:
        consumer = make_consumer(self.settings, self.group_id, **self._consumer_conf)
        # the run loop already paces the report (every 5 s)
        self._lag = LagReporter(consumer, self.metrics.lag, every_s=0)
        return consumer

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            list(self.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _new_producer(self) -> tuple[Producer, DeadLetterSink]:
        # transactional calls run on a thread of the producer's own (see _txn)
        self._txn_thread = ThreadPoolExecutor(1, thread_name_prefix="transactions")
        self._stuck = False
        producer = make_producer(self.settings, **self._producer_conf)
        dlq = DeadLetterSink(producer, self.catalog.name("deadletter"), self.metrics,
                             worker=self._worker_name)  # fmt: skip
        return producer, dlq

    # -- lifecycle ----------------------------------------------------------------

    def run(self, stop: Event) -> None:
        # engine state is acyclic plain objects: collect young garbage rarely, so the
        # collector does not rescan tens of thousands of live accumulators per batch
        gc.set_threshold(50_000, 20, 100)
        self._stop = stop
        self._init_transactions()
        self._broker_ok_at = time.monotonic()
        self._subscribe()
        log.info("processor_started", rules=len(self.pack.rules), topics=list(self.topics))
        self._last_lag = 0.0
        try:
            while not stop.is_set():
                try:
                    self._turn()
                except ConsumerFenced as exc:
                    now = time.monotonic()
                    self._fenced = [t for t in self._fenced if now - t < FENCED_WINDOW_S]
                    self._fenced.append(now)
                    if len(self._fenced) > FENCED_LIMIT:
                        log.error("consumer_fenced_repeatedly", error=str(exc)[:300],
                                  hint="another instance runs with this --instance-id")  # fmt: skip
                        raise
                    self._trouble = f"consumer fenced: {str(exc)[:300]}"
                    self._consumer_fenced = True
                except KafkaException as exc:
                    err = exc.args[0] if exc.args else None
                    if isinstance(err, KafkaError) and err.fatal() and self._consumer_error(err):
                        raise  # e.g. fenced by another instance with this id: misconfigured
                    # a bounded call that gave up (the broker away, a restore cut short):
                    # the open transaction is aborted and the partitions rewound
                    self._trouble = f"{type(exc).__name__}: {str(exc)[:300]}"
                except TimeoutError as exc:
                    self._trouble = f"TimeoutError: {exc}"
        finally:
            # graceful stop: the last batches are committed; closing leaves the group at once
            if self._txn_since is not None and self._trouble is None:
                try:
                    self._commit()
                except KafkaException as exc:  # the next owner replays what it covered
                    log.warning("final_commit_failed", error=str(exc))
            self.consumer.close()
            self.restorer.close()
            self.producer.flush(30)
            log.info("processor_stopped")

    def _turn(self) -> None:
        """One turn of the loop: a batch, its commit when due, the idle chores."""
        if self._trouble is not None:
            self._recover()
            return
        msgs = self._next_batch(self.max_wait_s)
        self.health.beat()
        if self._trouble is not None:
            return  # a rebalance callback failed: what was fetched is read again after
        if msgs:
            self._process_batch(msgs)
            if self._written:
                self._linger()
        # a batch that wrote commits at once; one that wrote nothing (nearly all:
        # transitions are rare) leaves its offsets for a later commit, at most
        # commit_every_s later or when the input goes quiet
        if self._txn_since is not None and (
            self._written or not msgs or time.monotonic() - self._txn_since >= self.commit_every_s
        ):
            self._commit()
        if time.monotonic() - self._last_lag > 5:
            self._last_lag = time.monotonic()
            # a commit is a broker round trip too: probe only when none went
            # through lately (an idle worker), not as a stall in a busy loop
            if self._last_lag - self._broker_ok_at > 5:
                self._probe_broker()
            self._lag.maybe_report()

    def _consumer_error(self, err: KafkaError) -> bool:
        """A fatal error of the consumer (not of a transaction, which is recovered)."""
        return bool(err.code() == KafkaError.FENCED_INSTANCE_ID)

    def _next_batch(self, wait_s: float) -> list[Message]:
        """What has arrived, at once: a batch never waits to fill. Under load the records
        that came while the last batch was decided make the next one (batches grow with
        the load, and commits are amortised by leaving the offsets of batches that wrote
        nothing for later); with nothing there it waits up to wait_s for the first."""
        msgs = self.consumer.consume(self.batch_size, timeout=0)
        if msgs:
            return msgs
        first = self.consumer.poll(wait_s)
        if first is None:
            return []
        if self.batch_size == 1:
            return [first]
        return [first, *self.consumer.consume(self.batch_size - 1, timeout=0)]

    def _linger(self) -> None:
        """Fold what arrives over the next commit_linger_s into the transaction about to
        commit. A window closes on each input partition as that partition's watermark
        passes its end, so one window's transitions come in two or three batches a few ms
        apart; committed one by one, the later ones waited behind the first commit's
        round trips, and were often refused meanwhile (CONCURRENT_TRANSACTIONS) while the
        broker finished it. One commit for them all is sooner for all but the first few."""
        deadline = time.monotonic() + self.commit_linger_s
        while (left := deadline - time.monotonic()) > 0:
            msgs = self._next_batch(left)
            if not msgs or self._trouble is not None:
                return
            self._process_batch(msgs)

    def _ready(self) -> tuple[bool, str]:
        if not self.assigned_once:
            return False, "not yet a member of the consumer group"
        # zero partitions is a legitimate standby when workers outnumber partitions
        return True, f"{len(self.engines)} partitions assigned and restored"

    def _broker_reachable(self) -> tuple[bool, str]:
        age = time.monotonic() - self._broker_ok_at
        if age > BROKER_STALE_S:
            return False, f"no broker round trip for {age:.0f}s"
        return True, f"last broker round trip {age:.1f}s ago"

    def _probe_broker(self) -> None:
        try:
            self.consumer.list_topics(self.alerts_topic, timeout=2)
        except KafkaException as exc:
            self.wait.waiting("the broker (metadata)", exc)
            return
        self._broker_ok_at = time.monotonic()
        if self.wait.stalled and not self._in_txn:
            # the broker is back after an outage: a producer that lived through it was
            # seen to block forever in its next send_offsets_to_transaction (given up
            # on only after STUCK_AFTER_S, see _txn); a fresh one costs a round trip
            self._replace_producer("renewed after the broker came back")
        self.wait.progressed()

    # -- rebalance ----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned_once = True
        foreign = [tp for tp in partitions if tp.topic not in self.topics]
        if foreign:
            # a group shared with another deployment's subscription: never touch its data
            log.warning("foreign_partitions_ignored", topics=sorted({tp.topic for tp in foreign}))
            partitions = [tp for tp in partitions if tp.topic in self.topics]
        try:
            for tp in partitions:
                self.engines[(tp.topic, tp.partition)] = self._restore(tp)
        except (KafkaException, TimeoutError) as exc:
            # records of a partition without an engine are not processed, and the
            # recovery that follows restores it and seeks back before any commit
            log.warning("restore_failed", error=str(exc)[:300])
            self._trouble = f"restore failed: {str(exc)[:300]}"
            self.wait.waiting("the restore of assigned partitions", exc)
        self.metrics.active_series.set(sum(e.series_count() for e in self.engines.values()))
        # restored engines are long-lived: move them out of the collector's sight, so a
        # full collection does not walk every accumulator (a tail-latency spike)
        gc.collect()
        gc.freeze()
        log.info(
            "partitions_assigned", partitions=[f"{t.topic}[{t.partition}]" for t in partitions]
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._written and self._trouble is None:
            # a rebalance reached a consume() of the linger: the writes go out with the
            # offsets that cover them while this worker still owns the partitions
            log.info("revoke_commits_open_transaction", records=self._written)
            self._commit()
        # otherwise the open transaction holds offsets only: the input read since the
        # last commit is the next owner's to replay (it writes nothing there, as this
        # worker wrote nothing)
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._written:
            # no longer ours (session expired): the next owner replays this input, and
            # our writes must not land beside its own
            log.warning("partitions_lost_transaction_aborted", records=self._written)
            # aborted by the recovery, outside this callback: the broker may be away
            self._trouble = "partitions lost with an open transaction"
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.engines.pop((tp.topic, tp.partition), None)
        log.info("partitions_revoked", partitions=[f"{t.topic}[{t.partition}]" for t in partitions])

    def _restore(self, tp: TopicPartition) -> RuleEngine:
        committed = self.consumer.committed(
            [TopicPartition(tp.topic, tp.partition)], timeout=CALL_TIMEOUT_S
        )
        return self.restorer.restore(tp.topic, tp.partition, committed[0].offset)

    # -- the batch ----------------------------------------------------------------

    def _process_batch(self, msgs: list[Message]) -> None:
        if self._txn_since is None:
            self._txn(self.producer.begin_transaction)  # local: nothing reaches the broker yet
            self._txn_since, self._in_txn = time.monotonic(), True
        counts: dict[str, int] = {}  # metrics per batch: a labelled inc() per record is costly
        touched: dict[TP, RuleEngine] = {}
        # records come in runs of one partition: one feed call per run
        run: list[Message] = []
        run_topic, run_partition = "", -1
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal() or err.code() == KafkaError._FATAL:
                    # after an outage the group can fence this very consumer (its old
                    # member id against its rejoined one): it is then replaced
                    raise ConsumerFenced(err)
                if err.code() != KafkaError._PARTITION_EOF:
                    # the broker away: librdkafka reconnects by itself; said once a while
                    self.wait.waiting("the broker (fetch)", err)
                continue
            partition, topic = msg.partition(), msg.topic()
            if partition != run_partition or topic != run_topic:
                if run:
                    self._feed_run((run_topic, run_partition), run, touched, counts)
                run, run_topic, run_partition = [msg], topic or "", partition or 0
            else:
                run.append(msg)
        if run:
            self._feed_run((run_topic, run_partition), run, touched, counts)
        for topic, n in counts.items():
            self.metrics.records_processed.labels(topic=topic).inc(n)
        for engine in touched.values():
            for alert in engine.advance():
                self.producer.produce(
                    self.alerts_topic, key=alert.fingerprint.encode(), value=encode(alert)
                )
                self.metrics.transitions.labels(rule=alert.rule, status=alert.status).inc()
                self._pending.append(alert)
                self._written += 1
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s:
            self._checkpoint(self._positions())

    def _feed_run(
        self,
        key: TP,
        run: list[Message],
        touched: dict[TP, RuleEngine],
        counts: dict[str, int],
    ) -> None:
        engine = self.engines.get(key)
        if engine is None:
            return  # revoked between fetch and now; the new owner will process it
        touched[key] = engine
        counts[key[0]] = counts.get(key[0], 0) + len(run)
        for msg, verdict in self.topics[key[0]](engine, run, self._skew):
            self._route(msg, verdict)  # type: ignore[arg-type]  # a Message went in

    def _route(self, msg: Message, verdict: Verdict) -> None:
        self._written += 1  # every verdict but ACCEPTED (never handed here) writes a record
        if verdict.outcome == IS_LATE:
            self.producer.produce(self.late_topic, key=msg.key(), value=msg.value())
            self.metrics.late.labels(topic=msg.topic() or "").inc()
        elif verdict.outcome == OVERFLOW:
            self.dlq.send(msg, reason=verdict.reason, error=verdict.error, stage="evaluate")
        elif verdict.outcome in (INVALID, FUTURE):
            self.dlq.send(msg, reason=verdict.reason, error=verdict.error, stage="validate")

    def _checkpoint(self, positions: list[TopicPartition]) -> None:
        n = self.restorer.state_partitions()
        for p in positions:
            engine = self.engines.get((p.topic, p.partition))
            if engine is None:
                continue
            for key, value in encode_checkpoint(
                self.group_id, p.topic, p.partition, p.offset, engine.dump()
            ):
                self.producer.produce(
                    self.state_topic, key=key, value=value, partition=p.partition % n
                )
                self._written += 1
        self._last_checkpoint = time.monotonic()
        gc.freeze()  # series created since the last freeze are long-lived too
        self.metrics.active_series.set(sum(e.series_count() for e in self.engines.values()))
        engines = self.engines.values()
        self.metrics.anomaly_bytes.set(sum(e.anomaly_memory_bytes() for e in engines))
        self.metrics.anomaly_series.set(sum(e.anomaly_series_count() for e in engines))

    def _positions(self) -> list[TopicPartition]:
        return [p for p in self.consumer.position(self.consumer.assignment()) if p.offset >= 0]

    def _commit(self) -> bool:
        """Commit the open transaction with the offsets consumed so far. True once it
        committed; False when it could not (it is then aborted, and state and positions
        rewound, by the recovery that the next turn of the loop runs first)."""
        if self._trouble is not None:
            return False  # partitions without their state: never commit their positions
        started = time.perf_counter()
        positions = self._positions()
        self._txn_since, self._written = None, 0  # ended either way below
        emitted, self._pending = self._pending, []
        try:
            if positions:  # none, when a rebalance took every partition since the begin
                group = self.consumer.consumer_group_metadata()
                self._retrying("the transaction's offsets", lambda: (
                    self.producer.send_offsets_to_transaction(positions, group, CALL_TIMEOUT_S)
                ))  # fmt: skip
            # a commit that timed out continues in the background: calling again resumes it
            self._retrying("the transaction's commit",
                           lambda: self.producer.commit_transaction(CALL_TIMEOUT_S))  # fmt: skip
        except KafkaException as exc:
            log.warning("transaction_failed", error=str(exc.args[0] if exc.args else exc)[:300])
            self._trouble = f"transaction failed: {str(exc)[:300]}"
            return False
        self._in_txn = False
        self.wait.progressed()
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self._broker_ok_at = time.monotonic()
        for alert in emitted:  # transitions are rare: one line each, once committed
            log.info("alert_transition", alert_id=alert.event_id,
                     fingerprint=alert.fingerprint, rule=alert.rule, status=alert.status,
                     labels=alert.labels, value=alert.value, threshold=alert.threshold,
                     window_end=alert.window_end and alert.window_end.isoformat())  # fmt: skip
        return True

    def _retrying(self, what: str, call: Callable[[], object]) -> None:
        """Call until it goes through or fails for a reason other than time; each try
        waits at most CALL_TIMEOUT_S, and the loop stays live and says what it awaits."""
        while True:
            started = time.monotonic()
            try:
                self._txn(call)
                return
            except KafkaException as exc:
                if not retriable(exc) or self._stop.is_set():
                    raise
                self.wait.waiting(what, exc.args[0])
                self.health.beat()
                if time.monotonic() - started < 0.5:
                    self._stop.wait(0.5)  # refused at once (the broker away): no busy loop

    def _txn(self, call: Callable[[], object]) -> None:
        """A transactional call, made on the producer's own thread and waited for with a
        deadline: after a broker restart librdkafka's send_offsets_to_transaction was
        seen waiting forever, past the timeout it was given, and a worker blocked in C
        can neither beat its liveness nor recover. A call that outlives its timeout by
        STUCK_AFTER_S is given up on, as a fatal error: the producer is replaced."""
        if self._stuck:
            raise KafkaException(KafkaError(KafkaError._FATAL, "the producer is stuck",
                                            fatal=True))  # fmt: skip
        future = self._txn_thread.submit(call)
        try:
            future.result(timeout=CALL_TIMEOUT_S + STUCK_AFTER_S)
        except TimeoutError:
            self._stuck = True
            why = f"a transactional call outlived its {CALL_TIMEOUT_S:g}s timeout"
            raise KafkaException(KafkaError(KafkaError._FATAL, why, fatal=True)) from None

    # -- recovery -----------------------------------------------------------------

    def _recover(self) -> None:
        """Abort the open transaction and rewind every assigned partition to the last
        committed transaction: state restored from checkpoint and replay, positions
        sought back. What follows writes what the aborted transaction would have."""
        log.warning("processor_recovering", reason=self._trouble)
        self._txn_since, self._written = None, 0
        self._pending.clear()
        self._abort()
        if self._consumer_fenced:
            self._replace_consumer()
            self._trouble = None
            return  # the new consumer's assignment restores its partitions
        while not self._stop.is_set():
            try:
                self._rewind()
            except (KafkaException, TimeoutError) as exc:
                self.wait.waiting("the restore of assigned partitions", exc)
                self.health.beat()
                self._stop.wait(1.0)
                self._serve_group()
                continue
            self._trouble = None
            self.wait.progressed()
            self._broker_ok_at = time.monotonic()
            log.info("processor_recovered", partitions=len(self.engines))
            return

    def _replace_consumer(self) -> None:
        log.warning("consumer_replaced", reason=self._trouble)
        self._consumer_fenced = False
        old = self.consumer
        self.engines.clear()
        try:
            old.close()
        except (KafkaException, RuntimeError) as exc:  # a fenced consumer may refuse
            log.info("consumer_close_failed", error=str(exc)[:300])
        self.consumer = self._new_consumer()
        self._subscribe()

    def _serve_group(self) -> None:
        """Between tries: let the consumer serve its group (rebalance callbacks, fetcher
        start-up) so that the next seek finds its partitions. A record it returns is
        dropped: the rewind that follows seeks back before it."""
        try:
            self.consumer.consume(1, timeout=0)
        except KafkaException as exc:
            self.wait.waiting("the broker (group)", exc)

    def _abort(self) -> None:
        while self._in_txn and not self._stop.is_set():
            started = time.monotonic()
            try:
                self._txn(lambda: self.producer.abort_transaction(CALL_TIMEOUT_S))
                self._in_txn = False
                log.info("transaction_aborted")
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal():
                    self._replace_producer(err)
                    return
                self.wait.waiting("the transaction's abort", err)
                self.health.beat()
                if time.monotonic() - started < 0.5:
                    self._stop.wait(0.5)

    def _replace_producer(self, err: KafkaError | str) -> None:
        """A producer whose transaction state is lost for good (fenced after the broker
        expired its transaction): a new one with the same transactional id takes over,
        and its init_transactions ends whatever the old one left open."""
        log.warning("producer_replaced", reason=str(err)[:300])
        old, self._in_txn = self.producer, False
        # a thread blocked in the old producer stays blocked: left to its fate, as the
        # new producer's init_transactions fences whatever the old one still holds
        self._txn_thread.shutdown(wait=False, cancel_futures=True)
        if not self._stuck:
            old.purge()
        self.producer, self.dlq = self._new_producer()
        self._init_transactions()

    def _init_transactions(self) -> None:
        self._retrying("the transaction coordinator",
                       lambda: self.producer.init_transactions(CALL_TIMEOUT_S))  # fmt: skip
        self.wait.progressed()

    def _rewind(self) -> None:
        """State and positions go back to the last committed transaction."""
        assignment = [tp for tp in self.consumer.assignment() if tp.topic in self.topics]
        committed = self.consumer.committed(assignment, timeout=CALL_TIMEOUT_S)
        engines: dict[TP, RuleEngine] = {}
        for tp in committed:
            engines[(tp.topic, tp.partition)] = self.restorer.restore(
                tp.topic, tp.partition, tp.offset
            )
            self.health.beat()
        self.engines = engines
        for tp in committed:
            # nothing committed yet: from the start, as the group's offset reset does
            where = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, where))


def default_instance_id() -> str:
    """Stable across restarts of the same pod/host, so a restarted worker fences its
    predecessor's open transaction at once instead of waiting for it to time out."""
    return os.environ.get("TOCSIN_INSTANCE_ID") or os.environ.get("HOSTNAME") or "local"
