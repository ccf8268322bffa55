"""Produce to Kafka from asyncio and answer only once Kafka acknowledged (acks=all).

Backpressure instead of unbounded buffering: a full librdkafka queue or a broker known
to be down raises ``Backpressure`` (the gateway answers 429 + Retry-After) before
anything is enqueued; a write not acknowledged within ``ack_timeout`` raises
``NotAcknowledged`` (503). Delivery callbacks run on the event loop, polled from it,
and settle the request's futures there.

No record over ``MAX_RECORD_BYTES`` is ever handed to the producer: librdkafka would
refuse it (``MSG_SIZE_TOO_LARGE``) after the request's other records were queued, a
half-written request answered 503 that the sender retries forever. Callers measure
their records first and answer 4xx; a request that still holds one raises
``RecordTooLarge`` before anything is produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.errors import TocsinError
from streams.kafka import KafkaWait

log = structlog.get_logger(__name__)

Record = tuple[str, bytes | None, bytes]  # topic, key, value

MAX_RECORD_BYTES = 960_000
"""Key plus value of one record: below librdkafka's ``message.max.bytes`` (1,000,000)
and the broker's default ``max.message.bytes`` (1,048,588) with room for the record's
framing. Topics created with a smaller ``max.message.bytes`` need a smaller bound."""
_YIELD_EVERY = 250  # produce() calls between turns of the event loop
_ANY_PARTITION = -1  # RD_KAFKA_PARTITION_UA: the configured partitioner chooses by key
_SERVE_BUSY = 0.001  # s between delivery-report polls while a request waits for them
_SERVE_IDLE = 0.05  # s between them otherwise (error callbacks)


class Backpressure(TocsinError):
    """Kafka cannot take more right now: the client should retry after a pause."""

    def __init__(self, why: str, retry_after: int = 1) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class NotAcknowledged(TocsinError):
    """Kafka did not acknowledge the write in time, or refused it."""


class RecordTooLarge(TocsinError, ValueError):
    """A record over MAX_RECORD_BYTES: the request was refused before anything was written."""


class KafkaWriter:
    """Records to Kafka, each request answered once all its records were acknowledged.

    Delivery reports are served on the event loop (``_serve``): a thread of their own
    would take the GIL once per acknowledged record, each time from the event loop in
    the middle of decoding, and the handing back and forth costs more than the reports.
    A thread of its own probes the cluster (a metadata request blocks)."""

    def __init__(self, producer: Producer, ack_timeout: float = 10.0,
                 queue_max: int | None = None, probe_topic: str | None = None,
                 name: str = "gateway/producer",
                 cluster_answers: Callable[[], bool] | None = None) -> None:  # fmt: skip
        self.producer = producer
        # asked before the writer takes Kafka for away: whether the cluster's nodes
        # answer on connections of their own (the producer's may be queued behind a write
        # that a node cut off from the others holds until its timeout)
        self._cluster_answers = cluster_answers
        # what the stuck-client guard watches (runtime/stuck.py): the broker away, or
        # requests unacknowledged since the last one that was
        self.wait = KafkaWait(name)
        self._acks_failing = False
        self.probe_topic = probe_topic
        self.ack_timeout = ack_timeout
        self.queue_max = queue_max
        self.broker_down = False
        self._down_since = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="kafka-probe", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False  # the timer is the short one
        self._unsettled = 0  # requests waiting for their acknowledgements

    def start(self) -> KafkaWriter:
        self._thread.start()
        with contextlib.suppress(RuntimeError):  # no loop yet: the first write serves
            self._serve_on(asyncio.get_running_loop())
        return self

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread.is_alive():  # an application that failed to start closes it too
            self._thread.join(timeout)
        # what is still queued belongs to requests not yet answered 2xx: with the broker
        # down there is no point in holding the shutdown for it
        self.producer.flush(0 if self.broker_down else timeout)
        self.wait.closed()

    def on_error(self, err: KafkaError) -> None:
        """librdkafka's error_cb: all brokers down flips the gateway into refusing."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self.broker_down:
                log.warning("kafka_unreachable", error=err.str())
            self.broker_down, self._down_since = True, time.monotonic()

    async def write(self, records: Sequence[Record]) -> None:
        if self.broker_down:
            raise Backpressure("Kafka is unreachable", retry_after=5)
        if not records:
            return
        for topic, key, value in records:
            size = len(key or b"") + len(value)
            if size > MAX_RECORD_BYTES:
                raise RecordTooLarge(f"a record for {topic} would be {size} bytes, over the "
                                     f"{MAX_RECORD_BYTES}-byte limit")  # fmt: skip
        if self.queue_max is not None and len(self.producer) + len(records) > self.queue_max:
            # refused before any of its records is queued, rather than half-queued when
            # the queue fills up in the middle of the request
            raise Backpressure("Kafka producer queue is full")
        loop = asyncio.get_running_loop()
        self._serve_on(loop)
        pending = _Pending(loop, len(records))
        self._unsettled += 1
        produce, delivered = self.producer.produce, pending.done
        try:
            for n, (topic, key, value) in enumerate(records, 1):
                if n % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a big request must not hold /healthz back
                try:
                    # positional (topic, value, key, any partition, callback): no keyword
                    # dict to build and parse per record
                    produce(topic, value, key, _ANY_PARTITION, delivered)
                except BufferError as exc:
                    # the earlier records of this request may still be delivered: the
                    # client retries the whole request, and consumers deduplicate by
                    # event_id
                    pending.abandon()
                    raise Backpressure("Kafka producer queue is full") from exc
                except KafkaException as exc:
                    pending.abandon()
                    raise NotAcknowledged(str(exc)) from exc
            if not self._busy:
                self._hurry()
            try:
                await asyncio.wait_for(asyncio.shield(pending.future), self.ack_timeout)
            except TimeoutError as exc:
                self._acks_failing = True
                self.wait.waiting("acknowledgement of a request's records")
                # acknowledged late, the producer works: records a stuck one holds expire
                # with an error instead (message.timeout.ms)
                pending.future.add_done_callback(self._acknowledged_late)
                raise NotAcknowledged(f"no acknowledgement within {self.ack_timeout:g}s") from exc
            if self.wait.stalled:
                self._acks_failing = False
                self.wait.progressed()
        finally:
            self._unsettled -= 1

    def _acknowledged_late(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._acks_failing = False
            self.wait.progressed()

    def _serve_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve on the loop that writes (a writer that outlives its loop follows the next)."""
        if self._loop is not loop and not self._stop.is_set():
            if self._timer is not None:
                self._timer.cancel()
            self._loop, self._busy = loop, False
            self._timer = loop.call_later(_SERVE_IDLE, self._serve)

    def _hurry(self) -> None:
        """Records were queued while the timer was the long one."""
        if self._timer is not None and self._loop is not None and not self._stop.is_set():
            self._timer.cancel()
            self._busy = True
            self._timer = self._loop.call_later(_SERVE_BUSY, self._serve)

    def _serve(self) -> None:
        """Delivery reports (settling the requests whose records are all acknowledged)
        and librdkafka's error callbacks; often while requests wait for them."""
        if self._stop.is_set() or self._loop is None:
            return
        self.producer.poll(0)
        self._busy = self._unsettled > 0
        self._timer = self._loop.call_later(_SERVE_BUSY if self._busy else _SERVE_IDLE,
                                            self._serve)  # fmt: skip

    def _watch(self) -> None:
        """Probe the cluster (every 5 s, every 1 s while down), because librdkafka reports
        "all brokers down" late and never reports "back up"."""
        self._probe()
        while not self._stop.wait(1.0 if self.broker_down else 5.0):
            self._probe()

    def _answered(self) -> bool:
        try:
            # one topic's metadata: the whole cluster's (thousands of topics) is built
            # into Python objects holding the GIL, a stall of the event loop each time
            meta: Any = self.producer.list_topics(self.probe_topic, timeout=2.0)
            return bool(meta.brokers)
        except KafkaException:
            return False

    def _second_opinion(self) -> bool:
        if self._cluster_answers is None:
            return False
        try:
            up = self._cluster_answers()
        except Exception as exc:  # the probe's thread must not end
            log.warning("kafka_count_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        if up:
            log.info("kafka_probe_unanswered", why="the producer's metadata request went "
                     "unanswered twice while the cluster's nodes answer")  # fmt: skip
        return up

    def _probe(self) -> None:
        # a request that went to a broker that died meanwhile (one node of a cluster lost)
        # gets no answer while the others serve: asked again before every write is refused
        up = self._answered() or (not self.broker_down and (
            self._answered() or self._second_opinion()))  # fmt: skip
        if up and self.broker_down:
            log.info("kafka_reachable_again", down_s=round(time.monotonic() - self._down_since))
        elif not up and not self.broker_down:
            log.warning("kafka_unreachable", probe="metadata")
            self._down_since = time.monotonic()
        self.broker_down = not up
        if not up:
            # what went unacknowledged meanwhile is the outage's doing (its records may
            # expire unacknowledged): the wait is for the broker now
            self._acks_failing = False
            self.wait.waiting("the broker (metadata)")
        elif not self._acks_failing:
            # answered, and no request has gone unacknowledged since one was: an idle
            # gateway's word that the wait is over
            self.wait.progressed()


class _Pending:
    """One future per request, settled when the last of its records is acknowledged:
    per-record futures and loop wake-ups cost more than the produce itself."""

    __slots__ = ("error", "future", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.future: asyncio.Future[None] = loop.create_future()
        self.left = count
        self.error: str | None = None

    def done(self, err: KafkaError | None, _msg: Message) -> None:
        """Delivery callback, on the event loop's thread (the only one that polls or
        flushes the producer)."""
        if err is not None and self.error is None:
            self.error = err.str()
        self.left -= 1
        if self.left == 0 and not self.future.done() and not self.future.get_loop().is_closed():
            if self.error is None:
                self.future.set_result(None)
            else:
                self.future.set_exception(NotAcknowledged(self.error))

    def abandon(self) -> None:
        """The request failed before all its records were handed over: the unsent ones
        never call back, so ``left`` never reaches 0 and the future (awaited by nobody)
        is never settled."""
        self.error = self.error or "not sent"
