"""What the notifier must remember across crashes and rebalances, per outbox partition:
which notifications were delivered, and the Slack message of each incident+channel.

It lives in the compacted `notifier-partition-state` topic, laid out like the outbox:
what concerns outbox partition ``p`` is written to partition ``p`` of the state topic
(``p`` modulo its partition count, should it have fewer). A replica loads a partition's
state when the group assigns it the partition, before it consumes any of its records,
and forgets it when the partition is revoked: whoever owns a partition knows everything
its earlier owners recorded, however often it moved.

Keys: ``done:<notification id>`` -> unix seconds of delivery,
``msg:<incident>|<target>`` -> ``channel_id/ts``, and ``owner:<partition>`` -> the
replica that was assigned the partition last (written, and acknowledged, before it
consumes a record of it). A delivered mark older than the
outbox's retention can never be needed again (its notification is gone from
`notifications`), so loading tombstones it: a partition's marks stay bounded by what
the outbox can still replay. A Slack message posted longer ago than the message
retention is forgotten the same way (an incident that old gets a new message rather
than an edit of one scrolled out of sight). A replica that runs for months without a
rebalance drops both from memory, and tombstones them, in `sweep`.

Order of writes: a message's ``msg:`` record is produced as soon as Slack returned its
ts; a ``done:`` mark only at `write_marks`, which the worker calls once the
notification's receipt was acknowledged. Neither is waited for before the next Slack
call: what a crash can lose is exactly what `may_have_sent` reports, and the Slack sink
looks that up in Slack (bounded) instead of trusting the state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

import structlog
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from schemas.errors import BrokerError
from streams.counted_nodes import counted_settings
from streams.kafka import CALL_TIMEOUT_S, watermarks
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

UNKNOWN = -1  # an outbox partition the state was not told (librdkafka's unassigned)
DAY_S = 86_400.0
SWEEP_EVERY_S = 3_600.0  # what a sweep forgets is days old: an hour late costs nothing


class StateNotLoaded(BrokerError, KafkaException):
    """A partition's state could not be read to its end within the bound."""


class NotifierState:
    """The delivered marks and message map of the outbox partitions this replica owns.

    Every entry carries the outbox partition it belongs to, so a revocation drops
    exactly that partition's entries and nothing of another owner's can linger.
    """

    def __init__(self, producer: Producer, topic: str, outbox: str, *,
                 settings: KafkaSettings | None = None, retention_s: float = 30 * DAY_S,
                 message_retention_s: float = 90 * DAY_S, legacy: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._producer = producer
        self._topic = topic
        self._outbox = outbox
        self._settings = settings
        self._retention_s = retention_s
        self._message_retention_s = message_retention_s
        self._swept_at = clock()
        self._clock = clock
        self.done: dict[str, tuple[int, float]] = {}  # id -> (outbox partition, when)
        self.messages: dict[tuple[str, str], tuple[int, str]] = {}  # -> (partition, ref)
        self._home: dict[str, tuple[int, float]] = {}  # incident -> (partition, last read)
        self._nid_home: dict[str, int] = {}  # notification id -> outbox partition
        self._replay_below: dict[int, int] = {}  # partition -> end offset when assigned
        self._replayed: dict[str, int] = {}  # notification ids read below that offset
        self._slots = 0  # partitions of the state topic
        self._me = uuid.uuid4().hex  # this replica, in the partitions' owner records
        self._unwritten: list[tuple[str, int]] = []
        # the single-topic layout of earlier versions, read once and never written: an
        # incident's message found there is recorded in its partition on first use
        self._legacy = legacy
        self._legacy_done: set[str] = set()
        self._legacy_messages: dict[tuple[str, str], str] = {}

    # ownership -----------------------------------------------------------------------

    def assign(self, partitions: Iterable[int], timeout: float = CALL_TIMEOUT_S) -> None:
        """Load the state of newly assigned outbox partitions, each read to its end.

        Raises `KafkaException` (the worker retries) when the broker does not answer
        in time; nothing of a partition is kept until all of it was read.
        """
        wanted = sorted(set(partitions) - set(self._replay_below))
        if not wanted:
            return
        loaded = self._fetch(wanted, timeout)
        previous = {p: self._restore(p, records) for p, (records, _) in loaded.items()}
        # this replica's claim on each partition, acknowledged before any of its records
        # is consumed: whoever is assigned it next sees whether anyone else was at it
        for p in wanted:
            self._produce(p, f"owner:{p}".encode(), self._me.encode())
        if (left := self._producer.flush(timeout)) != 0:
            raise StateNotLoaded(f"{left} records not acknowledged: partitions not claimed")
        for p, (records, end) in loaded.items():
            # nobody else owned it since this replica did, which recorded everything it
            # did before it let go: nothing in the outbox can have been sent unrecorded
            self._replay_below[p] = 0 if previous[p] == self._me else end
            log.info("notifier_partition_loaded", partition=p, records=len(records),
                     replay_below=self._replay_below[p])  # fmt: skip

    def _fetch(self, partitions: list[int], timeout: float
               ) -> dict[int, tuple[list[tuple[bytes, bytes]], int]]:  # fmt: skip
        """Per outbox partition: its state records, and the outbox's end offset."""
        if self._settings is None:
            raise ValueError("NotifierState.assign needs the Kafka settings")
        # what this replica delivered is recorded on the nodes the cluster counts: a
        # reader that asked a node cut off from them would miss the latest receipts and
        # deliver those notifications again
        reader = Consumer(counted_settings(self._settings).client_config() | {
            "group.id": f"{self._settings.topic_prefix}notifier-state-reader",
            "enable.auto.commit": False, "isolation.level": "read_committed",
            # each partition's watermark query would wait behind a fetch parked at the
            # broker for the previous one
            "fetch.wait.max.ms": 10})  # fmt: skip
        out: dict[int, tuple[list[tuple[bytes, bytes]], int]] = {}
        try:
            meta = reader.list_topics(self._topic, timeout=timeout).topics[self._topic]
            if meta.error is not None or not meta.partitions:
                raise StateNotLoaded(f"topic {self._topic} unavailable: {meta.error}")
            self._slots = len(meta.partitions)
            if self._legacy is not None:
                self._read_legacy(reader, self._legacy, timeout)
                self._legacy = None
            for p in partitions:
                _, end = watermarks(reader, TopicPartition(self._outbox, p), timeout)
                out[p] = (_read_partition(reader, self._topic, self._slot(p), timeout), end)
        finally:
            reader.close()
        return out

    def revoke(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for timed in (self.done, self._home):
            for k in [k for k, (p, _) in timed.items() if p in gone]:
                del timed[k]
        for table in (self._nid_home, self._replayed):
            for k in [k for k, p in table.items() if p in gone]:
                del table[k]
        self.messages = {k: v for k, v in self.messages.items() if v[0] not in gone}
        self._unwritten = [(n, p) for n, p in self._unwritten if p not in gone]
        for p in gone:
            self._replay_below.pop(p, None)

    def owned(self) -> list[int]:
        return sorted(self._replay_below)

    def home(self, incident_id: str) -> int | None:
        """The outbox partition an incident's notifications are read from."""
        found = self._home.get(incident_id)
        return found[0] if found else None

    # the worker's side ---------------------------------------------------------------

    def admit(self, partition: int, offset: int, notification_id: str, incident_id: str
              ) -> bool:  # fmt: skip
        """Note a notification read from the outbox; False when it was delivered
        already (by this replica or an earlier owner of its partition)."""
        self._home[incident_id] = (partition, self._clock())
        if notification_id in self.done or notification_id in self._legacy_done:
            return False
        self._nid_home[notification_id] = partition
        below = self._replay_below.get(partition)
        if below is None or offset < below:
            # in the outbox when the partition was assigned: an earlier owner may have
            # been delivering it when it died
            self._replayed[notification_id] = partition
        return True

    def mark_done(self, notification_id: str) -> None:
        """Done for this process at once; on the topic only at `write_marks`, which the
        worker calls once the notification's receipt was acknowledged: a mark that
        reached Kafka without its receipt would skip the notification after a crash and
        its receipt would never be written."""
        partition = self._nid_home.pop(notification_id, UNKNOWN)
        self.done[notification_id] = (partition, self._clock())
        self._replayed.pop(notification_id, None)
        self._unwritten.append((notification_id, partition))

    def write_marks(self) -> int:
        """Produce the marks of everything done since the last call; returns how many."""
        stamp = str(int(self._clock())).encode()
        for notification_id, partition in self._unwritten:
            self._produce(partition, f"done:{notification_id}".encode(), stamp)
        written, self._unwritten = len(self._unwritten), []
        return written

    # MessageStore for the Slack sink -------------------------------------------------

    def get(self, incident_id: str, channel: str) -> str | None:
        found = self.messages.get((incident_id, channel))
        return found[1] if found else self._legacy_messages.get((incident_id, channel))

    def put(self, incident_id: str, channel: str, ts: str) -> None:
        partition = self.home(incident_id)
        partition = UNKNOWN if partition is None else partition
        if self.messages.get((incident_id, channel)) != (partition, ts):
            self.messages[(incident_id, channel)] = (partition, ts)
            self._produce(partition, f"msg:{incident_id}|{channel}".encode(), ts.encode())

    def may_have_sent(self, notification_id: str) -> bool:
        """Whether an earlier owner of the notification's partition may have delivered
        it without the outcome being recorded: it was already in the outbox when this
        replica was assigned the partition and another replica had owned it since this
        one last did (or its partition was never assigned here)."""
        return notification_id in self._replayed or notification_id not in self._nid_home

    def sweep(self) -> int:
        """Forget, and tombstone, what can never be needed again: delivered marks older
        than the outbox's retention, Slack messages older than the message retention,
        and incidents not read for longer than the outbox keeps them. At most once per
        `SWEEP_EVERY_S`; returns how many entries went."""
        now = self._clock()
        if now - self._swept_at < SWEEP_EVERY_S:
            return 0
        self._swept_at = now
        horizon, messages = now - self._retention_s, now - self._message_retention_s
        old = [(n, p) for n, (p, at) in self.done.items() if at < horizon]
        for nid, partition in old:
            del self.done[nid]
            self._produce(partition, f"done:{nid}".encode(), None)
        stale = [(k, p) for k, (p, ref) in self.messages.items() if _posted(ref) < messages]
        for (incident, channel), partition in stale:
            del self.messages[(incident, channel)]
            self._produce(partition, f"msg:{incident}|{channel}".encode(), None)
        idle = [i for i, (_, at) in self._home.items() if at < horizon]
        for incident in idle:
            del self._home[incident]
        if old or stale or idle:
            log.info("notifier_state_swept", delivered=len(old), messages=len(stale),
                     incidents=len(idle))  # fmt: skip
        return len(old) + len(stale) + len(idle)

    # ---------------------------------------------------------------------------------

    def _restore(self, partition: int, records: list[tuple[bytes, bytes]]) -> str | None:
        """Take in a partition's records; returns the replica that claimed it last."""
        owner = None
        horizon = self._clock() - self._retention_s
        latest = dict(records)  # the last value of each key wins, as compaction keeps it
        for key, value in latest.items():
            kind, _, rest = key.decode(errors="replace").partition(":")
            if not value:
                continue  # a tombstone
            if kind == "done":
                at = _seconds(value)
                if at < horizon:
                    self._produce(partition, key, None)
                    continue
                self.done[rest] = (partition, min(at, self._clock()))
            elif kind == "msg":
                ref = value.decode(errors="replace")
                if _posted(ref) < self._clock() - self._message_retention_s:
                    self._produce(partition, key, None)
                    continue
                incident, _, channel = rest.partition("|")
                self.messages[(incident, channel)] = (partition, ref)
            elif kind == "owner" and rest == str(partition):
                owner = value.decode()
        return owner

    def _read_legacy(self, reader: Consumer, topic: str, timeout: float) -> None:
        listed = reader.list_topics(timeout=timeout).topics
        if topic not in listed:
            return
        horizon = self._clock() - self._retention_s
        latest: dict[bytes, bytes] = {}
        for p in sorted(listed[topic].partitions):
            latest.update(_read_partition(reader, topic, p, timeout))
        for key, value in latest.items():
            kind, _, rest = key.decode(errors="replace").partition(":")
            if kind == "done" and value and _seconds(value) >= horizon:
                self._legacy_done.add(rest)
            elif kind == "msg" and value:
                incident, _, channel = rest.partition("|")
                self._legacy_messages[(incident, channel)] = value.decode()
        log.info("notifier_legacy_state_read", topic=topic, delivered=len(self._legacy_done),
                 messages=len(self._legacy_messages))  # fmt: skip

    def _slot(self, partition: int) -> int:
        return partition % self._slots if self._slots else partition

    def _produce(self, partition: int, key: bytes, value: bytes | None) -> None:
        # UNKNOWN is librdkafka's "unassigned partition": the key's hash decides
        slot = self._slot(partition) if partition != UNKNOWN else UNKNOWN
        self._producer.produce(self._topic, key=key, value=value, partition=slot)


def _read_partition(reader: Consumer, topic: str, partition: int, timeout: float
                    ) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """(key, value) of every record of one partition, from its start to its end as it
    was when asked; `StateNotLoaded` when that end is not reached within ``timeout``."""
    tp = TopicPartition(topic, partition)
    low, high = watermarks(reader, tp, timeout)
    if high <= low:
        return []
    out: list[tuple[bytes, bytes]] = []
    reader.assign([TopicPartition(topic, partition, low)])
    try:
        pos, deadline = low, time.monotonic() + timeout
        while pos < high:
            if time.monotonic() > deadline:
                raise StateNotLoaded(f"{topic}[{partition}] read to {pos} of {high}")
            # no more than are left: consume(n) waits for n records or its timeout
            for m in reader.consume(min(5000, high - pos), timeout=0.5):
                if m.error() is None:
                    out.append((m.key() or b"", m.value() or b""))
                    pos = max(pos, (m.offset() or 0) + 1)
            pos = max(pos, reader.position([tp])[0].offset)
    finally:
        reader.unassign()
    return out


def _posted(ref: str) -> float:
    """When a Slack message was posted: its ts is Unix seconds (`channel/ts`)."""
    return _seconds(ref.rpartition("/")[2].encode())


def _seconds(value: bytes) -> float:
    """The delivery time of a mark; marks written before times were kept count as new."""
    try:
        seconds = float(value)
    except ValueError:
        return float("inf")
    return seconds if seconds > 1e9 else float("inf")  # the old b"1" marks
