"""The gateway's view of runtime silences, built from silence commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import encode
from schemas.commands import Matcher, SilenceSpec
from streams.gateway.silences_view import (
    KEEP_EXPIRED,
    Silences,
    expire_command,
    read_command,
    silence_command,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _spec(starts: datetime = NOW, hours: int = 2) -> SilenceSpec:
    return SilenceSpec(matchers=[Matcher(label="host", value="web-3")], starts_at=starts,
                       ends_at=starts + timedelta(hours=hours), author="alice")  # fmt: skip


def test_a_silence_is_active_then_expired_by_its_expire_command() -> None:
    view = Silences()
    created = silence_command(_spec(), NOW)
    read_command(encode(created), view.apply)
    known = view.get(created.event_id)
    assert known is not None and known.state(NOW + timedelta(minutes=1)) == "active"
    assert known.matches({"host": "web-3", "alertname": "x"}) and not known.matches({})
    later = NOW + timedelta(minutes=30)
    view.apply(expire_command(created.event_id, "bob", later))
    ended = view.get(created.event_id)
    assert ended is not None and ended.spec.ends_at == later and ended.state(later) == "expired"
    read_command(encode(created), view.apply)  # the follower reads the create back later
    again = view.get(created.event_id)
    assert again is not None and again.state(later) == "expired", "an expiry is not undone"


def test_a_pending_silence_expired_ends_before_it_began_and_old_ones_are_forgotten() -> None:
    view = Silences()
    created = silence_command(_spec(starts=NOW + timedelta(hours=1)), NOW)
    view.apply(created)
    assert view.all(NOW)[0].state(NOW) == "pending"
    view.apply(expire_command(created.event_id, "bob", NOW))
    (ended,) = view.all(NOW)
    assert ended.state(NOW) == "expired" and ended.spec.starts_at < ended.spec.ends_at == NOW
    assert view.all(NOW + KEEP_EXPIRED + timedelta(seconds=1)) == []


def test_other_commands_and_garbage_are_skipped() -> None:
    view = Silences()
    for raw in (b"", None, b'{"action":"silence",', b'{"action":"ack"}'):
        read_command(raw, view.apply)
    assert view.all(NOW) == []
