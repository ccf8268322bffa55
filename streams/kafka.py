"""confluent-kafka clients built from settings, and the Protocol they are coded against.

``confluent_kafka.Message`` cannot be constructed in a test, so code that
handles records takes ``KafkaRecord`` and tests hand in plain objects.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from streams.settings import SOCKET_TIMEOUT_MS, KafkaSettings

log = structlog.get_logger(__name__)

# the longest any single blocking Kafka call of a worker waits: a call that times out is
# retried (or the worker rewinds) by the worker's own loop, which meanwhile beats its
# liveness, reports not-ready and says what it waits for
CALL_TIMEOUT_S = 10.0
BROKER_WAITS_LONGER_MS = 15_000  # past librdkafka's once-a-second scan for timed-out requests


class KafkaRecord(Protocol):
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def error(self) -> Any: ...


def make_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """A producer that is acknowledged only once every in-sync replica has the write."""
    conf = settings.client_config() | {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        # the broker waits longer for its replicas than the client waits for the broker:
        # a node cut off from the others parks a write until this runs out, and answers
        # the connection's later requests (metadata among them) only after it; answered,
        # the client sends the write to the same node again. Given up by the client
        # first, the connection is dropped and the leader asked of another node
        "request.timeout.ms": SOCKET_TIMEOUT_MS + BROKER_WAITS_LONGER_MS,
    }
    conf.update(overrides)
    return Producer(conf)


def make_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    conf = settings.client_config() | {
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }
    conf.update(overrides)
    return Consumer(conf)


def make_admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient(settings.client_config())


def broker_reachable(settings: KafkaSettings, timeout: float = 2.0) -> bool:
    """True when a broker answers a metadata request within ``timeout`` seconds."""
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    try:
        # a refused TCP connect answers at once; librdkafka would retry and log each refusal
        socket.create_connection((host or "127.0.0.1", int(port or 9092)), timeout=timeout).close()
    except OSError:
        return False
    try:
        metadata = quiet_admin(settings, "probe").list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


def quiet_admin(settings: KafkaSettings, purpose: str) -> AdminClient:
    """An admin client for one question, whose connection failures are not logged (the
    asker says what the answer means)."""
    quiet = logging.getLogger(f"tocsin.rdkafka.{purpose}")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return AdminClient(settings.client_config() | {"logger": quiet})


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> list[bytes]:
    """Every committed record of a topic, partition by partition (for reports and tools)."""
    return [value for _, value in read_topic_keyed(settings, topic, timeout)]


def read_topic_keyed(settings: KafkaSettings, topic: str, timeout: float = 30.0
                     ) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """(key, value) of every committed record of a topic, partition by partition."""
    from confluent_kafka import TopicPartition

    # a small fetch wait: each partition's watermark query would otherwise wait behind a
    # fetch parked at the broker for the previous partition (half a second each)
    c = Consumer(settings.client_config() | {"group.id": "tocsin-reader",
                                             "isolation.level": "read_committed",
                                             "enable.auto.commit": False,
                                             "fetch.wait.max.ms": 10})  # fmt: skip
    out: list[tuple[bytes, bytes]] = []
    try:
        meta = c.list_topics(topic, timeout=timeout).topics[topic]
        for p in sorted(meta.partitions):
            low, high = watermarks(c, TopicPartition(topic, p), timeout)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            pos, deadline = low, time.monotonic() + timeout
            while pos < high and time.monotonic() < deadline:
                # no more than are left: consume(n) waits for n records or its timeout
                out += [(m.key() or b"", m.value() or b"")
                        for m in c.consume(min(5000, high - pos), timeout=0.5)
                        if not m.error()]  # fmt: skip
                pos = c.position([TopicPartition(topic, p)])[0].offset
            c.unassign()
    finally:
        c.close()
    return out


class KafkaWait:
    """Whether a worker is held up by Kafka, since when and by what.

    A worker calls `waiting(what)` each time a bounded Kafka call timed out or failed
    retriably, and `progressed()` once one went through. Readiness (`check`) is false
    from the first wait until the next progress; the log says what the worker waits
    for when the wait begins and then at most every `log_every_s` seconds (an outage
    of hours writes a line a minute, not one per retry), and how long it lasted once
    it ends. Read from the health server's thread: plain attribute reads only.
    """

    def __init__(self, worker: str, *, log_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.worker = worker
        self._log_every_s = log_every_s
        self._clock = clock
        self._since: float | None = None
        self._what = ""
        self._logged_at = float("-inf")
        self.waits = 0  # waits begun (one per outage, not per retry)
        _WAITS.add(self)

    @property
    def stalled(self) -> bool:
        return self._since is not None

    @property
    def what(self) -> str:
        return self._what

    def stalled_s(self) -> float:
        """How long this wait has lasted (0 when not waiting)."""
        since = self._since
        return 0.0 if since is None else self._clock() - since

    def waiting(self, what: str, error: object = None) -> None:
        now = self._clock()
        if self._since is None:
            self._since, self.waits = now, self.waits + 1
        self._what = what
        if now - self._logged_at >= self._log_every_s:
            self._logged_at = now
            log.warning("kafka_waiting", worker=self.worker, waiting_for=what,
                        for_s=round(now - self._since, 1),
                        error=str(error)[:300] if error is not None else None)  # fmt: skip

    def progressed(self) -> None:
        if self._since is None:
            return
        waited = self._clock() - self._since
        self._since, self._logged_at = None, float("-inf")
        log.info("kafka_recovered", worker=self.worker, waited_for=self._what,
                 waited_s=round(waited, 1))  # fmt: skip

    def check(self) -> tuple[bool, str]:
        since = self._since
        if since is None:
            return True, "making progress"
        return False, f"waiting {self._clock() - since:.0f}s for {self._what}"

    def closed(self) -> None:
        """Its client was closed on purpose: nothing is waited for any more, and the
        stuck-client guard stops watching it (a gateway application stopped inside a
        process that goes on, as in tests, must not be restarted for)."""
        self._since = None
        _WAITS.discard(self)


_WAITS: weakref.WeakSet[KafkaWait] = weakref.WeakSet()


def waits() -> list[KafkaWait]:
    """Every wait of this process's workers (the stuck-client guard watches them)."""
    return list(_WAITS)


# what a partition answers for a moment after its topic is created or its leader moves,
# and for good to a client whose metadata predates the move (below)
_MOVING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                     KafkaError.UNKNOWN_TOPIC_OR_PART,
                     KafkaError._UNKNOWN_PARTITION, KafkaError.OFFSET_NOT_AVAILABLE,
                     # the leader asked is gone (librdkafka does not mark these retriable)
                     KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
                     KafkaError._DESTROY_BROKER})  # fmt: skip


def watermarks(c: Consumer, tp: Any, timeout: float) -> tuple[int, int]:
    """A partition's low and high watermarks, asked of its leader. A consumer that does
    not fetch the partition keeps the leader it knew: after a leader moved (a broker
    restarted in a cluster) it was seen answering "Unknown partition" for as long as it
    was asked, while the same question right after a metadata request for the topic was
    answered at once; and after its leader died, timing out on the dead broker well
    after the others had elected a new one. So each retry asks for the topic first."""

    def relook(left: float) -> None:
        with contextlib.suppress(KafkaException):
            c.list_topics(tp.topic, timeout=max(0.1, min(2.0, left)))

    low, high = _asked(lambda t: c.get_watermark_offsets(tp, timeout=t), _MOVING, timeout,
                       relook)  # fmt: skip
    return int(low), int(high)


# what a group's coordinator answers while it moves to another broker, or loads the
# group's offsets after the move
_COORDINATOR_MOVING = frozenset({KafkaError.NOT_COORDINATOR,
                                 KafkaError.COORDINATOR_NOT_AVAILABLE,
                                 KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                 KafkaError._TIMED_OUT})  # fmt: skip


def committed_offsets(c: Consumer, tps: list[Any], timeout: float) -> list[Any]:
    """The group's committed offsets of `tps`, asked again within `timeout` while the
    group's coordinator moves (a broker restarted in a cluster): librdkafka finds the new
    one by itself, but answers the question in between with an error."""
    return list(_asked(lambda t: c.committed(tps, timeout=t), _COORDINATOR_MOVING, timeout))


def _asked(call: Callable[[float], Any], moving: frozenset[int], timeout: float,
           before_retry: Callable[[float], None] | None = None) -> Any:  # fmt: skip
    """`call(timeout)` again within `timeout` while it fails with a code of `moving` or a
    retriable error. Each try gets a third of the budget: one spent on a dead broker
    leaves time for the next. `before_retry(seconds left)` runs before every retry and
    before giving up, so the caller's own next try asks the right broker too."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return call(max(0.1, min(left, timeout / 3)))
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            known = isinstance(err, KafkaError) and err.code() in moving
            if not (known or retriable(exc)):
                raise
            if before_retry is not None:
                before_retry(deadline - time.monotonic())
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def retriable(exc: BaseException) -> bool:
    """A Kafka error worth retrying the same call for (a timeout, a broker away)."""
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    err = exc.args[0]
    if not isinstance(err, KafkaError):
        return False
    return bool(err.retriable()) and not err.fatal() and not err.txn_requires_abort()
