"""The exactly-once loop: consume, process, produce and commit in one Kafka transaction.

A batch that writes anything is committed at once, in one transaction with the
consumer offsets. A batch that writes nothing - nearly all of a processor's: transitions
are rare - leaves its offsets for the next commit, at most `commit_every_s` later (or
when the input goes quiet): a transaction costs three broker round trips, and a batch
that waits behind another's commit waits for nothing. A crash at any instant aborts
the open transaction; the next owner of a partition rebuilds its state as of the
committed offset (the worker's `on_assign`) and processes the rest as anew.

A broker outage is ridden out in the process, by the same path: every Kafka call waits
at most CALL_TIMEOUT_S; a call that timed out is retried while the error is retriable
(a commit continues where it was), and anything else - an aborted or fenced
transaction, a failed restore, partitions lost with the session - aborts the open
transaction (or replaces a producer that can no longer abort), then rebuilds every
assigned partition from its committed offset and seeks back there, as a restarted
worker would. Meanwhile the worker stays live, reports not ready and logs what it
waits for (see streams.kafka.KafkaWait).
"""

from __future__ import annotations

import time
from threading import Event
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTP
from prometheus_client import Histogram

from streams.counted_nodes import Count, left_out
from streams.health import Health
from streams.kafka import KafkaWait, make_consumer
from streams.metrics import LagReporter, WorkerMetrics
from streams.runtime.group_view import held_by_cluster
from streams.runtime.partitions import HeldPartitions
from streams.runtime.records import ConsumerFenced, fetch, split_runs
from streams.runtime.renewal import JOIN_GRACE_S, OUT_OF_GROUP, Membership, Renewal
from streams.runtime.transactions import Transactions
from streams.runtime.worker import Outputs, TransactionalWorker
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

# fenced more often than this within the window: another instance has this instance id
FENCED_LIMIT, FENCED_WINDOW_S = 3, 600.0
BROKER_STALE_S = 15.0  # readiness fails after this long without a broker round trip


def transactional_id(group_id: str, instance_id: str) -> str:
    """The transactional id of one instance: a restarted instance fences its own
    predecessor, and no other."""
    return f"{group_id}-{instance_id}"


class ExactlyOnceLoop:
    def __init__(self, settings: KafkaSettings, worker: TransactionalWorker, *, name: str,
                 group_id: str, instance_id: str, metrics: WorkerMetrics, health: Health,
                 consumer_conf: dict[str, Any] | None = None,
                 producer_conf: dict[str, Any] | None = None, batch_size: int = 20_000,
                 max_wait_s: float = 0.02, commit_every_s: float = 1.0,
                 commit_linger_s: float = 0.02,
                 commit_seconds: Histogram | None = None) -> None:  # fmt: skip
        self.settings, self.worker, self.group_id = settings, worker, group_id
        self.topics = list(worker.topics)
        self.metrics, self.health = metrics, health
        self.batch_size, self.max_wait_s = batch_size, max_wait_s
        self.commit_every_s, self.commit_linger_s = commit_every_s, commit_linger_s
        self.commit_seconds = commit_seconds
        # static membership: a restarted instance (same id) takes its partitions back at
        # once instead of waiting for its dead predecessor's session to time out
        self._consumer_conf = {"group.instance.id": f"{group_id}-{instance_id}",
                               "session.timeout.ms": 15_000,
                               "partition.assignment.strategy": "range",
                               **(consumer_conf or {})}  # fmt: skip
        self.consumer = self._new_consumer()
        self.wait = KafkaWait(name)
        self._stop = Event()
        self.parts = HeldPartitions(worker)
        self._txn_since: float | None = None  # monotonic time the open transaction began
        # why the open transaction cannot be committed: it is aborted and every assigned
        # partition rewound to its committed offset before anything else is done
        self._trouble: str | None = None
        self._consumer_fenced = False
        self._fenced: list[float] = []  # monotonic times the consumer was fenced
        # a static member has no member id until the join phase ends, and that phase
        # waits up to the rebalance timeout for a member busy restoring: only past it is
        # a consumer without one out of its group
        poll_s = int(self._consumer_conf.get("max.poll.interval.ms", 300_000)) / 1000
        self.renewal, self.membership = Renewal(), Membership(grace_s=poll_s + JOIN_GRACE_S)
        self.out = Outputs(None, health.beat, self._positions)
        tid = transactional_id(group_id, instance_id)
        self.txn = Transactions(settings, {"transactional.id": tid,
                                           "transaction.timeout.ms": 30_000,
                                           **(producer_conf or {})},
                                self.wait, health.beat, self._stop,
                                on_new=self._use_producer)  # fmt: skip
        self._broker_ok_at = float("-inf")  # monotonic time of the last broker round trip
        self._last_lag = 0.0
        health.add_check("kafka", self._broker_reachable)
        health.add_check("progress", self.wait.check)
        health.add_check("group", self.parts.ready)

    def _use_producer(self, producer: Any) -> None:
        self.out.producer = producer

    def _new_consumer(self, narrowed: Count | None = None) -> Consumer:
        """A consumer, told only of the nodes `narrowed` counts when the producer was."""
        self._consumer_left_out = narrowed.left_out if narrowed else frozenset[int]()
        settings = narrowed.narrow(self.settings) if narrowed else self.settings
        consumer = make_consumer(settings, self.group_id, **self._consumer_conf)
        self._lag = LagReporter(consumer, self.metrics.lag, every_s=0)  # paced by _turn
        return consumer

    def _subscribe(self) -> None:
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)  # fmt: skip

    # -- lifecycle ----------------------------------------------------------------

    def run(self, stop: Event) -> None:
        self._stop = self.txn.stop = stop
        try:
            self.txn.init()
        except KafkaException:
            if not stop.is_set():
                raise
            # stopped while the broker was away: nothing begun, nothing to hand over
            log.info("stopped_before_start", waited_for="the transaction coordinator")
            self.consumer.close()
            return
        self._broker_ok_at = time.monotonic()
        self._subscribe()
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
                    if (isinstance(err, KafkaError) and err.fatal()
                            and err.code() == KafkaError.FENCED_INSTANCE_ID):  # fmt: skip
                        raise  # fenced by another instance with this id: misconfigured
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
            self.txn.producer.flush(30)

    def _turn(self) -> None:
        """One turn of the loop: a batch, its commit when due, the idle chores."""
        if self._trouble is not None:
            self._recover()
            return
        msgs = fetch(self.consumer, self.batch_size, self.max_wait_s)
        self.health.beat()
        if self._trouble is not None:
            return  # a rebalance callback failed: what was fetched is read again after
        if msgs:
            self._process(msgs)
            if self.out.written:
                self._linger()
        # a batch that wrote commits at once; one that wrote nothing leaves its offsets
        # for a later commit, at most commit_every_s later or when the input goes quiet
        if self._txn_since is not None and (
            self.out.written or not msgs
            or time.monotonic() - self._txn_since >= self.commit_every_s
        ):  # fmt: skip
            self._commit()
        if time.monotonic() - self._last_lag > 5:
            self._last_lag = time.monotonic()
            # a commit is a broker round trip too: probe only when none went
            # through lately (an idle worker), not as a stall in a busy loop
            if self._last_lag - self._broker_ok_at > 5:
                self._probe_broker()
            self._lag.maybe_report()

    def _linger(self) -> None:
        """Fold what arrives over the next commit_linger_s into the transaction about to
        commit. Related outputs (one window's transitions, closed partition by partition)
        come in two or three batches a few ms apart; committed one by one, the later ones
        waited behind the first commit's round trips, and were often refused meanwhile
        (CONCURRENT_TRANSACTIONS). One commit for them all is sooner for all but the first."""
        deadline = time.monotonic() + self.commit_linger_s
        while (left := deadline - time.monotonic()) > 0:
            msgs = fetch(self.consumer, self.batch_size, left)
            if not msgs or self._trouble is not None:
                return
            self._process(msgs)

    def _process(self, msgs: list[Message]) -> None:
        if self._txn_since is None:
            self.txn.begin()
            self._txn_since = time.monotonic()
        counts: dict[str, int] = {}  # metrics per batch: a labelled inc() per record is costly
        runs = split_runs(msgs, self.parts.held, self.wait, counts)
        for topic, n in counts.items():
            self.metrics.records_processed.labels(topic=topic).inc(n)
        self.worker.process(runs, self.out)

    def _positions(self) -> list[KafkaTP]:
        return [p for p in self.consumer.position(self.consumer.assignment()) if p.offset >= 0]

    def _commit(self) -> bool:
        """Commit the open transaction with the offsets consumed so far. True once it
        committed; False when it could not (it is then aborted, and state and positions
        rewound, by the recovery that the next turn of the loop runs first)."""
        if self._trouble is not None:
            return False  # partitions without their state: never commit their positions
        started = time.perf_counter()
        positions = self._positions()
        self._txn_since, self.out.written = None, 0  # ended either way below
        try:
            self.txn.commit(positions, self.consumer.consumer_group_metadata())
        except KafkaException as exc:
            log.warning("transaction_failed", error=str(exc.args[0] if exc.args else exc)[:300])
            self._trouble = f"transaction failed: {str(exc)[:300]}"
            return False
        self.wait.progressed()
        if self.commit_seconds is not None:
            self.commit_seconds.observe(time.perf_counter() - started)
        self._broker_ok_at = time.monotonic()
        self.worker.committed()
        return True

    # -- readiness and the broker -------------------------------------------------

    def _broker_reachable(self) -> tuple[bool, str]:
        age = time.monotonic() - self._broker_ok_at
        if age > BROKER_STALE_S:
            return False, f"no broker round trip for {age:.0f}s"
        return True, f"last broker round trip {age:.1f}s ago"

    def _probe_broker(self) -> None:
        try:
            self.consumer.list_topics(self.topics[0], timeout=2)
        except KafkaException as exc:
            self.wait.waiting("the broker (metadata)", exc)
            return
        self._broker_ok_at = time.monotonic()
        if self.membership.absent(self.consumer, JOIN_GRACE_S) and self._trapped():
            self.wait.waiting(OUT_OF_GROUP)
            self._trouble = "out of a group the cluster's coordinator holds without it"
            self._consumer_fenced = True
            return
        if self.membership.absent(self.consumer):
            # the broker answers and this consumer fetches nothing: as fenced, a new one
            # rejoins, and its assignment restores the partitions (renewal.py)
            self.wait.waiting(OUT_OF_GROUP)
            if self.renewal.failed():
                self._trouble = f"out of its consumer group for {self.renewal.after_s:g} s more"
                self._consumer_fenced = True
            return
        self.renewal.ok()
        if self.wait.stalled and not self.txn.open:
            # the broker is back after an outage: a producer that lived through it was
            # seen to block forever in its next send_offsets_to_transaction (given up
            # on only after STUCK_AFTER_S); a fresh one costs a round trip
            self.txn.replace("renewed after the broker came back")
        self.wait.progressed()

    def _trapped(self) -> bool:
        """Out of its group at a node the cluster leaves out: the rebalance timeout need
        not pass (the static membership's grace is for a rebalance that waits on another
        member, and the cluster's coordinator holds this one in such a rebalance)."""
        found = left_out(self.settings)
        if found is None or found.left_out <= self._consumer_left_out:
            return False  # none left out, or this consumer was told only of the others
        instance = str(self._consumer_conf["group.instance.id"])
        return held_by_cluster(self.settings, found, self.group_id, instance) is False

    # -- rebalance ----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        self.parts.assigned_once = True
        self.membership.assigned()
        partitions = self.parts.ours(partitions)
        try:
            self.parts.load(consumer, partitions)
        except (KafkaException, TimeoutError) as exc:
            # records of a partition without state are not processed, and the recovery
            # that follows loads it and seeks back before any commit
            log.warning("restore_failed", error=str(exc)[:300])
            self._trouble = f"restore failed: {str(exc)[:300]}"
            self.wait.waiting("the restore of assigned partitions", exc)
        log.info(
            "partitions_assigned", partitions=[f"{t.topic}[{t.partition}]" for t in partitions]
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        if self.out.written and self._trouble is None:
            # a rebalance reached a consume() of the linger: the writes go out with the
            # offsets that cover them while this worker still owns the partitions
            log.info("revoke_commits_open_transaction", records=self.out.written)
            self._commit()
        # otherwise the open transaction holds offsets only: the input read since the
        # last commit is the next owner's to replay (it writes nothing there, as this
        # worker wrote nothing)
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        if self.out.written:
            # no longer ours (session expired): the next owner replays this input, and
            # our writes must not land beside its own
            log.warning("partitions_lost_transaction_aborted", records=self.out.written)
            # aborted by the recovery, outside this callback: the broker may be away
            self._trouble = "partitions lost with an open transaction"
        self._drop(partitions)

    def _drop(self, partitions: list[KafkaTP]) -> None:
        self.membership.lost()  # until the rebalance assigns again
        self.parts.drop((tp.topic, tp.partition) for tp in partitions)
        log.info("partitions_revoked", partitions=[f"{t.topic}[{t.partition}]" for t in partitions])

    # -- recovery -----------------------------------------------------------------

    def _recover(self) -> None:
        """Abort the open transaction and rewind every assigned partition to the last
        committed transaction: state rebuilt, positions sought back. What follows writes
        what the aborted transaction would have."""
        log.warning("worker_recovering", reason=self._trouble)
        self._txn_since, self.out.written = None, 0
        self.worker.aborted()
        self.txn.abort()
        if self.txn.narrowed and self.txn.narrowed.left_out - self._consumer_left_out:
            # the producer was told only of the nodes the cluster counts: the consumer may
            # still be a member at a node left out, which goes on answering its heartbeats,
            # while the commits go to the coordinator the cluster elected, which refuses
            # them (unknown member); a new consumer joins there
            self._consumer_fenced = True
        if self._consumer_fenced:
            self._replace_consumer()
            self._trouble = None
            return  # the new consumer's assignment loads its partitions
        while not self._stop.is_set():
            try:
                self.parts.rewind(self.consumer)
            except (KafkaException, TimeoutError) as exc:
                self.wait.waiting("the restore of assigned partitions", exc)
                self.health.beat()
                self._stop.wait(1.0)
                self._serve_group()
                continue
            self._trouble = None
            self.wait.progressed()
            self._broker_ok_at = time.monotonic()
            log.info("worker_recovered", partitions=len(self.parts.held))
            return

    def _replace_consumer(self) -> None:
        # its coordinator may be a node cut off from the others, which goes on answering
        narrowed = self.txn.narrowed or left_out(self.settings)
        log.warning("consumer_replaced", reason=self._trouble,
                    left_out=sorted(narrowed.left_out) if narrowed else [])  # fmt: skip
        self._consumer_fenced = False
        old = self.consumer
        self.parts.drop(set(self.parts.held))
        try:
            old.close()
        except (KafkaException, RuntimeError) as exc:  # a fenced consumer may refuse
            log.info("consumer_close_failed", error=str(exc)[:300])
        self.consumer = self._new_consumer(narrowed)
        self.membership.renewed()
        self._subscribe()

    def _serve_group(self) -> None:
        """Between tries: let the consumer serve its group (rebalance callbacks, fetcher
        start-up) so that the next seek finds its partitions. A record it returns is
        dropped: the rewind that follows seeks back before it."""
        try:
            self.consumer.consume(1, timeout=0)
        except KafkaException as exc:
            self.wait.waiting("the broker (group)", exc)
