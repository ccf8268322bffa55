"""The notifier's memory per outbox partition: what an earlier owner of a partition
delivered and posted is known to whoever is assigned it next, it is written to the
state partition of its outbox partition, forgotten on revocation, and marks older than
the outbox's retention are tombstoned so the set stays bounded."""

from __future__ import annotations

from streams.notifier.state import NotifierState

NOW = 1_800_000_000.0
DAY = 86_400
Loaded = dict[int, tuple[list[tuple[bytes, bytes]], int]]


class Recorder:
    """Stands for the producer and, read back per partition, for the state topic."""

    def __init__(self) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []

    def produce(self, topic: str, key: bytes, value: bytes | None, partition: int) -> None:
        self.records.append((partition, key, value))

    def flush(self, timeout: float) -> int:
        return 0

    def written(self, kind: bytes) -> list[tuple[int, bytes, bytes | None]]:
        return [r for r in self.records if r[1].startswith(kind)]

    def partition(self, p: int) -> list[tuple[bytes, bytes]]:
        return [(k, v or b"") for q, k, v in self.records if q == p]


def replica(topic: Recorder, ends: dict[int, int], now: float = NOW) -> NotifierState:
    state = NotifierState(topic, "state", "outbox", retention_s=30 * DAY,  # type: ignore[arg-type]
                          clock=lambda: now)  # fmt: skip

    def fetch(partitions: list[int], timeout: float) -> Loaded:
        return {p: (topic.partition(p), ends.get(p, 0)) for p in partitions}

    state._fetch = fetch  # type: ignore[method-assign]
    return state


def deliver(state: NotifierState, partition: int, offset: int, nid: str, inc: str) -> None:
    assert state.admit(partition, offset, nid, inc)
    state.mark_done(nid)


def test_the_next_owner_of_a_partition_knows_what_the_last_one_did() -> None:
    topic = Recorder()
    first = replica(topic, {})
    first.assign([0, 1])
    deliver(first, 1, 0, "inc-7/trigger", "inc-7")
    first.put("inc-7", "C-ops", "C-ops/17.1")
    assert topic.written(b"msg:") == [(1, b"msg:inc-7|C-ops", b"C-ops/17.1")]
    assert not topic.written(b"done:"), "the mark only once its receipt is acknowledged"
    first.write_marks()
    assert topic.records[-1][:2] == (1, b"done:inc-7/trigger"), "the incident's partition"

    second = replica(topic, {1: 1})  # started before partition 1 moved to it
    second.assign([1])
    assert not second.admit(1, 0, "inc-7/trigger", "inc-7"), "delivered by the last owner"
    assert second.get("inc-7", "C-ops") == "C-ops/17.1", "the update edits the same message"

    second.revoke([1])
    assert second.get("inc-7", "C-ops") is None and not second.done
    assert second.owned() == []


def test_only_what_was_in_the_outbox_at_assignment_may_have_been_sent_before() -> None:
    state = replica(Recorder(), {0: 5})
    state.assign([0])
    assert state.admit(0, 4, "inc-1/update", "inc-1")
    assert state.may_have_sent("inc-1/update"), "an earlier owner may have been at it"
    assert state.admit(0, 5, "inc-2/trigger", "inc-2")
    assert not state.may_have_sent("inc-2/trigger"), "written after: nobody else saw it"


def test_marks_older_than_the_outbox_are_tombstoned_when_loaded() -> None:
    topic = Recorder()
    old = replica(topic, {}, now=NOW - 40 * DAY)
    old.assign([2])
    deliver(old, 2, 0, "old", "inc-1")
    old.write_marks()
    recent = replica(topic, {}, now=NOW - DAY)
    recent.assign([2])
    deliver(recent, 2, 1, "recent", "inc-1")
    recent.write_marks()
    topic.records.append((2, b"done:legacy", b"1"))  # a mark from before times were kept

    later = replica(topic, {2: 2})
    later.assign([2])
    assert set(later.done) == {"recent", "legacy"}, "older than the 30-day outbox: forgotten"
    assert (2, b"done:old", None) in topic.records, "a tombstone compacts it away"


def test_a_state_topic_with_fewer_partitions_still_loads_everything_it_needs() -> None:
    topic = Recorder()
    state = replica(topic, {})
    state._slots = 2
    state.assign([3])
    deliver(state, 3, 0, "n", "inc-3")
    state.write_marks()
    assert [r[:2] for r in topic.written(b"done:")] == [(1, b"done:n")], "partition 3 of 2 -> 1"


def test_a_partition_back_with_the_replica_that_had_it_last_needs_no_search() -> None:
    topic = Recorder()
    state = replica(topic, {0: 7})
    state.assign([0])
    state.revoke([0])  # a rebalance that gives it back: nobody else was at it
    state.assign([0])
    assert state.admit(0, 3, "inc-1/update", "inc-1")
    assert not state.may_have_sent("inc-1/update"), "recorded all it did before letting go"
    other = replica(topic, {0: 7})
    other.assign([0])
    assert other.admit(0, 3, "inc-1/update", "inc-1")
    assert other.may_have_sent("inc-1/update"), "another replica had it: it may have"
    state.assign([0])  # still its own until revoked: no new claim is needed
    state.revoke([0])
    state.assign([0])
    assert state.admit(0, 3, "inc-1/update", "inc-1")
    assert state.may_have_sent("inc-1/update"), "the other replica had it in between"


def test_a_notification_never_admitted_counts_as_possibly_sent() -> None:
    state = replica(Recorder(), {})
    assert state.may_have_sent("never-admitted"), "no knowledge: look before posting"


def test_a_replica_running_for_months_forgets_what_can_never_be_needed_again() -> None:
    topic = Recorder()
    now = [NOW]
    state = NotifierState(topic, "state", "outbox", retention_s=30 * DAY,  # type: ignore[arg-type]
                          message_retention_s=90 * DAY, clock=lambda: now[0])  # fmt: skip
    state._fetch = lambda partitions, timeout: {p: ([], 0) for p in partitions}  # type: ignore[method-assign]
    state.assign([3])
    deliver(state, 3, 0, "inc-1/trigger", "inc-1")
    state.put("inc-1", "C-ops", f"C-ops/{NOW:.6f}")
    state.write_marks()
    assert state.sweep() == 0, "nothing is old yet"

    now[0] = NOW + 31 * DAY
    deliver(state, 3, 1, "inc-1/update", "inc-1")  # the incident is still being worked
    assert state.sweep() == 1, "the 31-day-old mark goes, the incident and message stay"
    assert set(state.done) == {"inc-1/update"}
    assert (3, b"done:inc-1/trigger", None) in topic.records, "tombstoned where it lives"
    assert state.get("inc-1", "C-ops") == f"C-ops/{NOW:.6f}", "updates still edit it"
    assert state.sweep() == 0, "at most one sweep an hour"

    now[0] = NOW + 91 * DAY
    assert state.sweep() == 3, "the message, the last mark and the idle incident"
    assert state.get("inc-1", "C-ops") is None and not state.done and state.home("inc-1") is None
    assert (3, b"msg:inc-1|C-ops", None) in topic.records


def test_a_message_older_than_its_retention_is_tombstoned_when_loaded() -> None:
    topic = Recorder()
    topic.records += [(0, b"msg:inc-old|C-ops", f"C-ops/{NOW - 100 * DAY:.6f}".encode()),
                      (0, b"msg:inc-new|C-ops", f"C-ops/{NOW - DAY:.6f}".encode())]  # fmt: skip
    state = replica(topic, {0: 2})
    state.assign([0])
    assert state.get("inc-old", "C-ops") is None
    assert state.get("inc-new", "C-ops") is not None
    assert (0, b"msg:inc-old|C-ops", None) in topic.records
