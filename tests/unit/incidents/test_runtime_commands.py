"""Commands the API adds: priority, expiring a silence, weekly maintenance, on-call overrides."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from processors.incidents.lifecycle import on_alert, on_command
from processors.incidents.oncall import on_call, with_overrides
from processors.incidents.suppression import Suppressions
from schemas import Command
from schemas.commands import Matcher, OnCallOverride, SilenceSpec, Weekly
from streams.agents.broadcast import apply_record
from tests.unit.incidents.test_lifecycle import CFG, T0, alert, group, targets


def _cmd(**kw: object) -> Command:
    return Command(actor="carol", at=T0, **kw)  # type: ignore[arg-type]


def test_a_responder_sets_the_priority_and_the_snapshot_keeps_it() -> None:
    g = group()
    opened = on_alert(g, alert(), T0, CFG)
    assert g.incident_id is not None
    derived = [e for e in opened.effects if type(e).__name__ == "Incident"][-1]
    assert derived.priority == "P2"  # type: ignore[union-attr]
    out = on_command(g, _cmd(action="priority", incident_id=g.incident_id, priority="P4"),
                     T0 + timedelta(minutes=1), CFG)  # fmt: skip
    assert [e.kind for e in out.events] == ["priority_changed"]
    assert out.events[0].message == "P2 -> P4 by carol"
    snap = [e for e in out.effects if type(e).__name__ == "Incident"][-1]
    assert snap.priority == "P4"  # type: ignore[union-attr]
    # a later alert does not undo the responder's choice
    later = on_alert(g, alert(fp="f9"), T0 + timedelta(minutes=2), CFG)
    snaps = [e for e in later.effects if type(e).__name__ == "Incident"]
    assert snaps[-1].priority == "P4"  # type: ignore[union-attr]


def test_priority_command_needs_a_priority() -> None:
    with pytest.raises(ValidationError, match="priority: required"):
        _cmd(action="priority", incident_id="inc-aaaaaaaaaaaa-bbbbbbbbbb")


def test_an_expired_silence_mutes_nothing_from_then_on() -> None:
    sup = Suppressions.from_config(CFG)
    spec = SilenceSpec(matchers=[Matcher(label="host", value="web-03")], starts_at=T0,
                       ends_at=T0 + timedelta(hours=2), author="alice")  # fmt: skip
    apply_record(sup, b"sil:s1", spec.model_dump_json().encode())
    assert on_alert(group(), alert(), T0, CFG, sup).suppressed is not None
    apply_record(sup, b"sil:s1", None)  # the tombstone expire_silence broadcasts
    assert targets(on_alert(group(), alert(), T0 + timedelta(minutes=1), CFG, sup))


def test_weekly_window_follows_the_wall_clock_of_its_zone_across_dst() -> None:
    # a Saturday-night window in Berlin: the wall clock, not UTC, must bound it when the
    # clocks go back inside the window
    w = Weekly(days=["sat"], start=time(22, 0), duration=timedelta(hours=4),
               timezone="Europe/Berlin")  # fmt: skip
    summer = datetime(2026, 7, 4, 20, 30, tzinfo=UTC)  # Sat 22:30 CEST
    assert w.covers(summer)
    assert w.covers(datetime(2026, 7, 4, 23, 59, tzinfo=UTC)), "past midnight, Sunday 01:59"
    assert not w.covers(datetime(2026, 7, 5, 0, 0, tzinfo=UTC)), "Sunday 02:00: over"
    assert not w.covers(datetime(2026, 7, 4, 19, 59, tzinfo=UTC)), "Sat 21:59"
    assert not w.covers(datetime(2026, 7, 8, 20, 30, tzinfo=UTC)), "a Wednesday"
    assert w.covers(datetime(2026, 12, 5, 21, 30, tzinfo=UTC)), "Sat 22:30 CET in winter"


def test_a_weekly_maintenance_silence_mutes_only_inside_its_windows() -> None:
    sup = Suppressions()
    spec = SilenceSpec(
        matchers=[Matcher(label="host", value="web-03")],
        starts_at=T0 - timedelta(days=30), ends_at=T0 + timedelta(days=365), author="ops",
        comment="patch night",
        weekly=Weekly(days=["mon"], start=time(10, 0), duration=timedelta(hours=1)),
    )  # fmt: skip
    sup.add_silence("m1", spec)
    labels = {"host": "web-03"}
    assert T0.weekday() == 0 and T0.hour == 10  # a Monday, 10:00 UTC
    assert (
        sup.reason("f", labels, T0) == "maintenance (mon 10:00 for 1:00:00 UTC) by ops: patch night"
    )
    assert sup.reason("f", labels, T0 + timedelta(hours=1)) is None
    assert sup.reason("f", labels, T0 + timedelta(days=7, minutes=5)) is not None


def test_weekly_needs_a_real_time_zone() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Weekly(days=["mon"], start=time(1), duration=timedelta(hours=1), timezone="Mars/Olympus")


def test_an_override_made_at_run_time_decides_who_is_on_call() -> None:
    sched = CFG.schedule("platform-primary")
    assert sched is not None and on_call(sched, T0) == "alice"
    o = OnCallOverride(schedule="platform-primary", user="bob", start=T0 - timedelta(hours=1),
                       end=T0 + timedelta(hours=1), author="alice")  # fmt: skip
    cfg = with_overrides(CFG, [o])
    new = cfg.schedule("platform-primary")
    assert new is not None and on_call(new, T0) == "bob"
    assert on_call(new, T0 + timedelta(hours=2)) == "alice", "the override ended"
    # and the pages follow it: level 1 of platform-default pages the schedule
    assert "U0BOB" in [t for _, _, t in targets(on_alert(group(), alert(), T0, cfg))]
