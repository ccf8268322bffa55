"""When a Kafka client that keeps failing should be replaced by a new one.

After a broker restart, librdkafka clients were seen that never recovered while every
other client in the same process had: a consumer answering "unknown partition", a
consumer whose metadata requests failed with "broker transport failure", for minutes,
until the test waiting on them gave up. A new client with the same settings connects
at once. Replacing one during a real outage costs little (a client closes at once with
the broker away), so a client failing for `after_s` on end is replaced, and again
after each further `after_s` of failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaException

from streams.kafka import KafkaWait

RENEW_S = 30.0
# a consumer joins its group within seconds of subscribing or of being dropped from it
JOIN_GRACE_S = 10.0
OUT_OF_GROUP = "the consumer group (this consumer is in none)"  # what such a worker waits for
PROBE_EVERY_S = 10.0  # how often a group-less consumer is asked whether it hears the broker


class Renewal:
    def __init__(self, after_s: float = RENEW_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:  # fmt: skip
        self.after_s = after_s
        self._clock = clock
        self._failing_since: float | None = None
        self.renewals = 0

    def failed(self) -> bool:
        """A call failed: True when the client has now failed for `after_s` and should
        be replaced (the count then starts again)."""
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
            return False
        if now - self._failing_since < self.after_s:
            return False
        self._failing_since = now
        self.renewals += 1
        return True

    def ok(self) -> None:
        self._failing_since = None


class _Member(Protocol):
    def memberid(self) -> str | None: ...


class Membership:
    """Whether a subscribed consumer is in its group. A dynamic member gets its member id
    from its first join request, and one dropped from the group (a session timeout
    during an outage) rejoins by itself within seconds; one that has had no member id
    for `grace_s` while the broker answers fetches nothing and is not about to: it is as
    stuck as a consumer that hears nothing, and is renewed the same way (a projector's
    consumer was seen leaving its group during an outage and never coming back, the
    store frozen). A static member (`group.instance.id`) gets its id only when the join
    phase ends: its grace must outlast the rebalance timeout."""

    def __init__(self, grace_s: float = JOIN_GRACE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.grace_s = grace_s
        self._clock = clock
        self._since: float | None = None
        self._assigned = True  # until lost: a new member is judged by its member id

    def lost(self) -> None:
        """Its partitions were revoked or lost: out of the group until assigned again. A
        consumer whose session lapsed keeps its member id while it tries to rejoin, and
        one whose coordinator is a node cut off from the others tries there for good:
        that node still answers, and can store no assignment."""
        self._assigned = False

    def assigned(self) -> None:
        self._assigned = True

    def absent(self, consumer: _Member, grace_s: float | None = None) -> bool:
        """True once `consumer` has been out of its group for `grace_s` (by default the
        membership's own; a local call: no round trip): without a member id, or without
        an assignment since `lost`."""
        if consumer.memberid() and self._assigned:
            self._since = None
            return False
        now = self._clock()
        if self._since is None:
            self._since = now
        return now - self._since >= (self.grace_s if grace_s is None else grace_s)

    def renewed(self) -> None:
        """A new consumer: it gets its own grace to join."""
        self._since, self._assigned = None, True


class _Client(Protocol):
    def list_topics(self, topic: str, timeout: float) -> object: ...

    def memberid(self) -> str | None: ...


class Hearing:
    """Whether a consumer still hears the broker. One can fetch nothing and say nothing
    once it stops hearing a broker that is back (one answering "unknown partition" for
    minutes after a broker restart was seen), and for a group-less consumer (manual
    assignment, following a whole topic) no group notices either: what it feeds would go
    stale for good. So every `every_s` it is asked for its topic's metadata, and, given
    a `membership`, whether it is in its group; one whose metadata requests or fetches
    have failed, or that has been out of its group, for `renewal.after_s` should be
    replaced. `wait` says so meanwhile (and the stuck-client guard sees it)."""

    def __init__(self, wait: KafkaWait, every_s: float = PROBE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic,
                 membership: Membership | None = None) -> None:  # fmt: skip
        self.wait = wait
        self.every_s = every_s
        self.renewal = Renewal(clock=clock)
        self.membership = membership
        self._clock = clock
        self._probed_at = float("-inf")
        self._fetch_failed = False  # since the last probe

    def fetch_failed(self, error: object) -> None:
        self._fetch_failed = True
        self.wait.waiting("the broker (fetch)", error)

    def due(self) -> bool:
        return self._clock() - self._probed_at >= self.every_s

    def probe(self, consumer: _Client, topic: str) -> str:
        """Asks `consumer` for `topic`'s metadata (blocks up to 2 s): the reason to replace
        it, or '' (heard, or not failing for long enough yet)."""
        self._probed_at = self._clock()
        failure: KafkaException | None = None
        try:
            consumer.list_topics(topic, timeout=2)
        except KafkaException as exc:
            failure = exc
            self.wait.waiting("the broker (metadata)", exc.args[0] if exc.args else exc)
        fetch_failed, self._fetch_failed = self._fetch_failed, False
        absent = failure is None and self.membership is not None and self.membership.absent(
            consumer)  # fmt: skip
        if absent:
            self.wait.waiting(OUT_OF_GROUP)
        elif failure is None and not fetch_failed:
            self.renewal.ok()
            self.wait.progressed()
            return ""
        if not self.renewal.failed():
            return ""
        span = f"{self.renewal.after_s:g} s"
        if absent:
            return f"out of its group for {span}"
        return f"its requests failed for {span}: {failure or self.wait.what}"[:300]

    def renewed(self) -> None:
        """A new consumer: asked at once whether it hears the broker, with its own grace
        to join its group."""
        self._probed_at = float("-inf")
        if self.membership is not None:
            self.membership.renewed()
