"""Alertmanager's resolve timeout: a firing alert not sent again before its endsAt
resolves by itself, once; a re-send, a resolution or a lease cap changes when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.expiry.leases import Leases
from schemas import Alert

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _alert(status: str, ends: datetime | None, fp: str = "fp1") -> Alert:
    return Alert(fingerprint=fp, status=status, rule="HighLatency", source="alertmanager",  # type: ignore[arg-type]
                 labels={"alertname": "HighLatency"}, starts_at=T0, ends_at=ends)  # fmt: skip


def test_an_alert_that_stops_coming_resolves_at_its_end_and_only_once() -> None:
    leases = Leases()
    leases.observe(_alert("firing", T0 + timedelta(minutes=4)), T0)
    assert leases.due(T0 + timedelta(minutes=3)) == []
    (e,) = leases.due(T0 + timedelta(minutes=4, seconds=1))
    assert e.transition.status == "resolved" and e.transition.ends_at == T0 + timedelta(minutes=4)
    assert e.transition.labels == {"alertname": "HighLatency"}
    leases.expired(e)
    assert len(leases) == 0 and leases.due(T0 + timedelta(hours=1)) == []


def test_a_resend_moves_the_end_and_a_resolution_ends_the_lease() -> None:
    leases = Leases()
    leases.observe(_alert("firing", T0 + timedelta(minutes=4)), T0)
    leases.observe(_alert("firing", T0 + timedelta(minutes=5)), T0 + timedelta(minutes=1))
    assert leases.due(T0 + timedelta(minutes=4, seconds=30)) == []
    assert leases.next_deadline() == T0 + timedelta(minutes=5)
    leases.observe(_alert("resolved", T0 + timedelta(minutes=2)), T0 + timedelta(minutes=2))
    assert leases.due(T0 + timedelta(hours=1)) == [] and leases.next_deadline() is None


def test_an_expiry_decided_twice_is_the_same_event_and_a_failed_write_is_retried() -> None:
    first, second = Leases(), Leases()
    for leases in (first, second):
        leases.observe(_alert("firing", T0 + timedelta(minutes=4)), T0)
    (a,) = first.due(T0 + timedelta(minutes=5))
    (b,) = second.due(T0 + timedelta(minutes=6))
    assert a.transition.event_id == b.transition.event_id
    first.retry(a)
    (again,) = first.due(T0 + timedelta(minutes=7))
    assert again.transition.event_id == a.transition.event_id


def test_a_renewal_after_the_lease_was_found_due_keeps_the_alert() -> None:
    leases = Leases()
    leases.observe(_alert("firing", T0 + timedelta(minutes=4)), T0)
    (e,) = leases.due(T0 + timedelta(minutes=4))
    leases.observe(_alert("firing", T0 + timedelta(minutes=9)), T0 + timedelta(minutes=4))
    leases.expired(e)
    assert len(leases) == 1 and leases.next_deadline() == T0 + timedelta(minutes=9)


def test_a_lease_lasts_at_most_max_lease_after_it_was_received() -> None:
    leases = Leases(max_lease=timedelta(minutes=10))
    leases.observe(_alert("firing", T0 + timedelta(days=30)), T0)
    assert leases.next_deadline() == T0 + timedelta(minutes=10)
    leases.observe(_alert("firing", None, fp="other"), T0)
    assert len(leases) == 1, "a firing alert without ends_at holds no lease"
