"""A transactional producer whose every call has a deadline, and that can be replaced.

After a broker restart librdkafka's send_offsets_to_transaction was seen waiting
forever, past the timeout it was given, and a worker blocked in C can neither beat its
liveness nor recover. So each transactional call runs on a thread of the producer's
own and is waited for with a deadline: a call that outlives its timeout by
STUCK_AFTER_S is given up on, as a fatal error, and the producer replaced; the new one
has the same transactional id, and its init_transactions fences whatever the old one
still holds.

A coordinator can also answer and never finish: a node cut off from the others while
its clients still reach it goes on answering for the transactions it coordinated,
refusing each as "concurrent" while it waits on replicas that no longer follow it, and
librdkafka goes on asking it. So a call that has not gone through for NARROW_AFTER_S
asks every node which nodes the cluster still counts; when the cluster has left one
out, the producer is replaced by one that knows only the others, and finds the
coordinator the cluster elected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Event
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from streams.counted_nodes import Count, count
from streams.kafka import CALL_TIMEOUT_S, KafkaWait, make_producer, retriable
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

# a transactional call still blocked this long after its own timeout is given up on
STUCK_AFTER_S = 5.0
# a commit or an abort still timing out after this long is given up on: after a broker
# restart librdkafka was seen to keep the coordinator's request queued for good ("1
# out-queue", every try), the broker back and answering everyone else. Twice the
# broker's transaction timeout: by then the broker has aborted the transaction itself,
# so a new producer (whose init fences the old) loses nothing the abort would have kept
GIVE_UP_S = 60.0
# a coordinator that has not let a call through for this long may be one the cluster
# no longer counts: every node is asked (a healthy coordinator answers a call in
# milliseconds, or within one call's timeout while a partition's leader moves)
NARROW_AFTER_S = CALL_TIMEOUT_S


class Transactions:
    """The transactional producer of one worker: begin, commit with the consumed
    offsets, abort; each call bounded, retried while the error is retriable."""

    def __init__(self, settings: KafkaSettings, conf: dict[str, Any], wait: KafkaWait,
                 beat: Callable[[], None], stop: Event,
                 on_new: Callable[[Producer], None] = lambda _: None) -> None:  # fmt: skip
        self._settings, self._conf = settings, conf
        self.wait, self._beat, self.stop = wait, beat, stop
        self._on_new = on_new  # told of every new producer (the outputs write through it)
        self.open = False  # a transaction begun and neither committed nor aborted
        # the count that made a call give up: the abort that follows goes to the same
        # coordinator, so the producer is replaced at once
        self._narrow_to: Count | None = None
        self.narrowed: Count | None = None  # the count the producer was told only of
        self._count: Callable[[KafkaSettings], Count | None] = count
        self._heard: tuple[list[int], list[int]] | None = None  # the count last logged
        self.producer = self._new()

    def _new(self, narrowed: Count | None = None) -> Producer:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="transactions")
        self._stuck = False
        self._narrow_to = None
        self.narrowed = narrowed if narrowed and narrowed.left_out and narrowed.counted else None
        settings = self.narrowed.narrow(self._settings) if self.narrowed else self._settings
        producer = make_producer(settings, **self._conf)
        self._on_new(producer)
        return producer

    def init(self) -> None:
        self._retrying("the transaction coordinator",
                       lambda: self.producer.init_transactions(CALL_TIMEOUT_S),
                       in_init=True)  # fmt: skip
        self.wait.progressed()

    def _left_out_now(self) -> Count | None:
        """The cluster's count when it leaves a node out (and counts some)."""
        found = self._count(self._settings)
        if found is None:  # no node answered: the broker is away, as in an outage
            return None
        heard = (sorted(found.counted), sorted(found.left_out))
        if heard != self._heard:  # a call stuck for minutes counts every NARROW_AFTER_S
            self._heard = heard
            log.info("nodes_counted", counted=heard[0], left_out=heard[1])
        return found if found.counted and found.left_out else None

    def _newly_left_out(self) -> Count | None:
        """The cluster's count when it leaves out a node this producer may still ask."""
        found = self._left_out_now()
        told_without = self.narrowed.left_out if self.narrowed else frozenset()
        return found if found and not found.left_out <= told_without else None

    def begin(self) -> None:
        self._call(self.producer.begin_transaction)  # local: nothing reaches the broker yet
        self.open = True

    def commit(self, positions: list[TopicPartition], group: object) -> None:
        """Commit the open transaction with `positions` as the group's offsets. Raises
        KafkaException when it cannot (the caller then aborts and rewinds)."""
        if positions:  # none, when a rebalance took every partition since the begin
            self._retrying("the transaction's offsets", lambda: (
                self.producer.send_offsets_to_transaction(positions, group, CALL_TIMEOUT_S)
            ), give_up_after=GIVE_UP_S)  # fmt: skip
        # a commit that timed out continues in the background: calling again resumes it
        self._retrying("the transaction's commit",
                       lambda: self.producer.commit_transaction(CALL_TIMEOUT_S),
                       give_up_after=GIVE_UP_S)  # fmt: skip
        self.open = False

    def abort(self) -> None:
        """End the open transaction, waiting out the broker; a producer that can no
        longer abort, or has not managed to for GIVE_UP_S, is replaced (its successor's
        init ends the transaction)."""
        if self.open and self._narrow_to is not None:
            self.replace("the transaction's coordinator is a node the cluster left out")
            return
        first = asked = time.monotonic()
        while self.open and not self.stop.is_set():
            started = time.monotonic()
            if started - first > GIVE_UP_S:
                self.replace(f"the abort has not gone through in {GIVE_UP_S:g}s")
                return
            if started - asked >= NARROW_AFTER_S:
                asked = started
                if narrowed := self._newly_left_out():
                    self.replace("the abort is not through and the cluster left out "
                                 f"nodes {sorted(narrowed.left_out)}", narrowed)  # fmt: skip
                    return
            try:
                self._call(lambda: self.producer.abort_transaction(CALL_TIMEOUT_S))
                self.open = False
                log.info("transaction_aborted")
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal():
                    self.replace(err)
                    return
                self.wait.waiting("the transaction's abort", err)
                self._beat()
                if time.monotonic() - started < 0.5:
                    self.stop.wait(0.5)

    def replace(self, why: KafkaError | str, narrowed: Count | None = None) -> None:
        """A producer whose transaction state is lost for good (fenced after the broker
        expired its transaction), or renewed after an outage: a new one with the same
        transactional id takes over, told only of the nodes the cluster counts when it
        left one out (`narrowed`, or counted now)."""
        self._swap(why, narrowed or self._narrow_to or self._left_out_now())
        self.init()

    def _swap(self, why: KafkaError | str, narrowed: Count | None) -> None:
        log.warning("producer_replaced", reason=str(why)[:300],
                    left_out=sorted(narrowed.left_out) if narrowed else [])  # fmt: skip
        old, self.open = self.producer, False
        # a thread blocked in the old producer stays blocked: left to its fate, as the
        # new producer's init_transactions fences whatever the old one still holds
        self._thread.shutdown(wait=False, cancel_futures=True)
        if not self._stuck:
            old.purge()
        self.producer = self._new(narrowed)

    def _retrying(self, what: str, call: Callable[[], object],
                  give_up_after: float | None = None, in_init: bool = False) -> None:  # fmt: skip
        """Call until it goes through or fails for a reason other than time (or, with
        `give_up_after`, for that long); each try waits at most CALL_TIMEOUT_S, and the
        loop stays live and says what it awaits. Not through for NARROW_AFTER_S while
        the cluster leaves out a node: `init` goes on with a producer that knows only
        the others, any other call is given up (its transaction is lost with its
        producer)."""
        first = asked = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                self._call(call)
                return
            except KafkaException as exc:
                if not retriable(exc) or self.stop.is_set():
                    raise
                if give_up_after is not None and started - first > give_up_after:
                    raise KafkaException(KafkaError(
                        KafkaError._TIMED_OUT, f"{what}: not through in {give_up_after:g}s"
                    )) from exc  # fmt: skip
                if time.monotonic() - asked >= NARROW_AFTER_S:
                    asked = time.monotonic()
                    if narrowed := self._newly_left_out():
                        why = f"{what}: not through; the cluster left out nodes " \
                              f"{sorted(narrowed.left_out)}"  # fmt: skip
                        if not in_init:
                            self._narrow_to = narrowed
                            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, why)) from exc
                        self._swap(why, narrowed)
                        continue
                self.wait.waiting(what, exc.args[0])
                self._beat()
                if time.monotonic() - started < 0.5:
                    self.stop.wait(0.5)  # refused at once (the broker away): no busy loop

    def _call(self, call: Callable[[], object]) -> None:
        """A transactional call on the producer's own thread, waited for with a deadline."""
        if self._stuck:
            raise KafkaException(KafkaError(KafkaError._FATAL, "the producer is stuck",
                                            fatal=True))  # fmt: skip
        future = self._thread.submit(call)
        try:
            future.result(timeout=CALL_TIMEOUT_S + STUCK_AFTER_S)
        except TimeoutError:
            self._stuck = True
            why = f"a transactional call outlived its {CALL_TIMEOUT_S:g}s timeout"
            raise KafkaException(KafkaError(KafkaError._FATAL, why, fatal=True)) from None
