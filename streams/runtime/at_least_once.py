"""The at-least-once loop: consume, process, wait until Kafka acknowledged every output,
then commit.

A crash re-reads at most the batches whose offsets were not committed; their outputs
carry ids derived from the input (its position, or the id of the event it answers),
so a re-read batch writes the same records again and their readers deduplicate them.
The consumed positions are also committed when partitions are revoked between
batches, so a graceful rebalance re-reads nothing; a stop in the middle of a batch
commits nothing of it.

With the broker away the loop keeps running: outputs wait in the producer's queue for
as long as it takes (the workers' producers have no delivery timeout: a record given
up would be lost once its input's offsets were committed), the flush and the commit
are retried in bounded steps, an idle worker probes the broker every few seconds,
readiness is false meanwhile and the log says what it waits for.

The loop is a coroutine: a worker whose `process` is a coroutine (deliveries over HTTP)
runs on it, and so does one that shares an event loop with other tasks (`block_s=0`:
the consumer is never waited on; the loop sleeps `idle_s` when there is nothing).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from functools import partial
from threading import Event
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTP
from prometheus_client import Gauge

from streams.counted_nodes import Count, left_out
from streams.health import Health
from streams.kafka import KafkaWait, make_consumer
from streams.metrics import LagReporter, WorkerMetrics
from streams.runtime.commits import commit_consumed, flush_acknowledged
from streams.runtime.partitions import HeldPartitions
from streams.runtime.records import ConsumerFenced, fetch, split_runs
from streams.runtime.renewal import OUT_OF_GROUP, Membership, Renewal
from streams.runtime.worker import AtLeastOnceWorker, Outputs
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
PROBE_EVERY_S = 5.0


class AtLeastOnceLoop:
    """`producer`: the worker's own, flushed before each commit (None: the worker waits
    for its outputs' acknowledgements itself before `process` returns). `stateful`: the
    worker loads state per partition in `on_assign` (else it is not called)."""

    def __init__(self, settings: KafkaSettings, worker: AtLeastOnceWorker, *, name: str,
                 group_id: str, producer: Producer | None, health: Health | None = None,
                 metrics: WorkerMetrics | None = None, lag: Gauge | None = None,
                 consumer_conf: dict[str, Any] | None = None, batch: int = 500,
                 block_s: float = 0.5, idle_s: float = 0.005, commit_async: bool = False,
                 stateful: bool = False, outputs: str = "outputs") -> None:  # fmt: skip
        self.settings, self.worker, self.group_id = settings, worker, group_id
        self.topics = list(worker.topics)
        self.producer, self.metrics, self.stateful = producer, metrics, stateful
        self.batch, self.block_s, self.idle_s = batch, block_s, idle_s
        self.commit_async, self.what = commit_async, outputs
        self._consumer_conf = consumer_conf or {}
        self._lag_gauge = lag
        self.health = health or Health()
        self.wait = KafkaWait(name)
        self.consumer = self._new_consumer()
        self.out = Outputs(producer, self.health.beat, self._positions)
        self.parts = HeldPartitions(worker)
        self.joined = False  # in the group (readiness); false again once out of it
        self._inflight = False  # a batch consumed and its outputs not yet acknowledged
        self._stop = Event()
        self._probed_at = 0.0
        self.renewal = Renewal()
        self.membership = Membership()
        if health is not None:
            health.add_check("group", lambda: (self.joined, "assigned" if self.joined
                                               else "not yet in the consumer group"))  # fmt: skip
            health.add_check("kafka", self.wait.check)

    def _new_consumer(self, narrowed: Count | None = None) -> Consumer:
        """A consumer, told only of the nodes `narrowed` counts when it leaves some out."""
        settings = narrowed.narrow(self.settings) if narrowed else self.settings
        self._left_out = narrowed.left_out if narrowed else frozenset[int]()
        consumer = make_consumer(settings, self.group_id, **self._consumer_conf)
        gauge = self._lag_gauge
        self._lag = LagReporter(consumer, gauge) if gauge is not None else None
        return consumer

    def _positions(self) -> list[KafkaTP]:
        return [p for p in self.consumer.position(self.consumer.assignment()) if p.offset >= 0]

    async def run(self, stop: Event | None = None) -> None:
        """Until `stop` is set (or the task is cancelled)."""
        self._stop = stop = stop or Event()
        self._subscribe()
        try:
            while not stop.is_set():
                msgs = fetch(self.consumer, self.batch, self.block_s)
                self.health.beat()
                if self._lag is not None:
                    self._lag.maybe_report()
                if msgs:
                    # from here until the batch is acknowledged a revoke commits nothing:
                    # the consumer's positions are past records not yet processed
                    self._inflight = True
                    if stop.is_set():
                        break  # stopped during the fetch: the batch is re-read later
                    try:
                        await self._batch(msgs)
                    except ConsumerFenced as exc:
                        await self._replace_consumer(str(exc))
                    continue
                await self._probe()
                if self.block_s <= 0:
                    await asyncio.sleep(self.idle_s)
        finally:
            if self.producer is not None:
                self.producer.flush(30)
            self.consumer.close()

    async def _batch(self, msgs: list[Message]) -> None:
        counts: dict[str, int] = {}
        runs = split_runs(msgs, self.parts.held if self.stateful else _ALL, self.wait, counts)
        if self.metrics is not None:
            for topic, n in counts.items():
                self.metrics.records_processed.labels(topic=topic).inc(n)
        result = self.worker.process(runs, self.out)
        if inspect.isawaitable(result):
            await result
        if self.producer is not None:
            beat, stop = self.health.beat, self._stop
            flush_acknowledged(self.producer, self.wait, beat, stop, self.what)
            # what may be written only once the batch's outputs are (a delivered mark
            # after its receipt), then acknowledged in turn before the commit
            after = getattr(self.worker, "acknowledged", None)
            if after is not None and after():
                flush_acknowledged(self.producer, self.wait, beat, stop, "follow-up records")
        self._inflight = False
        if not self.commit_async:
            commit_consumed(self.consumer, self.wait, self.health.beat, self._stop)
            return
        if counts:
            self.wait.progressed()
        try:
            self.consumer.commit(asynchronous=True)
        except KafkaException as exc:  # revoked meanwhile: the new owner replays
            log.info("commit_skipped", error=str(exc)[:300])

    async def _probe(self) -> None:
        """Idle: is the broker there? (No record would say it went away or came back.)"""
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = now
        ask = partial(self.consumer.list_topics, self.topics[0], timeout=2)
        try:
            metadata = await asyncio.get_running_loop().run_in_executor(None, ask)
        except KafkaException as exc:
            self.wait.waiting("the broker (metadata)", exc.args[0] if exc.args else exc)
            if self.renewal.failed():
                # this consumer was seen failing every request for minutes after a
                # broker restart, fetching nothing, while the broker answered others
                await self._replace_consumer(f"no answer from the broker for "
                                             f"{self.renewal.after_s:g} s: {exc}")  # fmt: skip
            return
        topic = metadata.topics.get(self.topics[0])
        if topic is None or topic.error is not None:
            # no group is joined for a topic that is not there: nothing to renew
            self.renewal.ok()
            self.wait.waiting(f"the topic {self.topics[0]}", topic.error if topic else None)
            return
        if self.membership.absent(self.consumer):
            self.joined = False
            self.wait.waiting(OUT_OF_GROUP)
            # its coordinator may be a node cut off from the others, which goes on
            # answering: a new consumer, told only of the nodes the cluster counts, joins
            # at the coordinator the cluster elected
            narrowed = await asyncio.to_thread(left_out, self.settings)
            if narrowed is not None and not narrowed.left_out <= self._left_out:
                why = f"out of its group while the cluster leaves out {sorted(narrowed.left_out)}"
                await self._replace_consumer(why, narrowed)
            elif self.renewal.failed():
                why = f"out of its group for {self.renewal.after_s:g} s more"
                await self._replace_consumer(why, narrowed)
            return
        self.renewal.ok()
        self.wait.progressed()

    # -- the group ----------------------------------------------------------------

    def _subscribe(self) -> None:
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)  # fmt: skip

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        self.joined = True
        self.membership.assigned()
        if not self.stateful:
            return
        partitions = self.parts.ours(partitions)
        while True:
            try:
                self.parts.load(consumer, partitions)
                break
            except (KafkaException, TimeoutError) as exc:
                # the partitions' records wait: none is handed over before its state
                if self._stop.is_set():
                    # stopping: the loop ends before the batch this fetch returns, and
                    # commits nothing on the way out
                    self._inflight = True
                    return
                self.wait.waiting("the restore of assigned partitions", exc)
                self.health.beat()
                self._stop.wait(1.0)
        self.wait.progressed()
        log.info(
            "partitions_assigned", partitions=[f"{t.topic}[{t.partition}]" for t in partitions]
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        if not self._inflight and not self.wait.stalled:
            # between batches everything consumed was processed and acknowledged; cut
            # short, or with the broker away (a commit would block), it is re-read
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:  # nothing consumed yet, or the group moved on
                log.info("commit_on_revoke_skipped", error=str(exc)[:300])
        self.membership.lost()  # until the rebalance assigns again
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        # out of the group (its session lapsed): not ready until an assignment comes back,
        # though the consumer keeps its member id while it tries to rejoin
        self.joined = False
        self.membership.lost()
        self._drop(partitions)  # no longer ours: nothing to commit

    def _drop(self, partitions: list[KafkaTP]) -> None:
        if self.stateful:
            self.parts.drop((tp.topic, tp.partition) for tp in partitions)

    async def _replace_consumer(self, reason: str, narrowed: Count | None = None) -> None:
        """A consumer the group fenced for good, or one that stopped hearing the broker:
        a new one rejoins; what the current batch read is re-read (nothing of it was
        committed). The old one closes on a thread: the event loop may be shared."""
        log.warning("consumer_replaced", reason=reason[:300],
                    left_out=sorted(narrowed.left_out) if narrowed else [])  # fmt: skip
        self._inflight = True  # no commit on the way out
        try:
            await asyncio.to_thread(self.consumer.close)
        except (KafkaException, RuntimeError) as err:
            log.info("consumer_close_failed", error=str(err)[:300])
        self._inflight = False
        self._drop([KafkaTP(t, p) for t, p in self.parts.held])
        self.consumer = self._new_consumer(narrowed)
        self.membership.renewed()
        self._subscribe()


class _Everything:
    """Every partition: a stateless worker holds them all."""

    def __contains__(self, _: object) -> bool:
        return True

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


_ALL = _Everything()
