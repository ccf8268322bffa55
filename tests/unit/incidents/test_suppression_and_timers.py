"""Silences, maintenance, inhibition, flapping, group_interval, repeat_interval, receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.incidents.lifecycle import next_deadline, on_alert, on_command, on_receipt, on_tick
from processors.incidents.routing import route
from processors.incidents.state import GroupState
from processors.incidents.suppression import Suppressions
from schemas import Alert, Command, DeliveryReceipt
from schemas.commands import Matcher, SilenceSpec
from schemas.config import Config
from tests.unit.incidents.test_lifecycle import CFG, T0, alert, group, targets

SECOND = timedelta(seconds=1)


def silence(label: str, value: str, start: datetime, end: datetime) -> SilenceSpec:
    return SilenceSpec(matchers=[Matcher(label=label, value=value)], starts_at=start,
                       ends_at=end, author="alice", comment="deploy")  # fmt: skip


def test_a_silenced_alert_opens_nothing_and_says_why() -> None:
    sup = Suppressions.from_config(CFG)
    sup.add_silence("s1", silence("host", "web-03", T0, T0 + timedelta(hours=1)))
    g = group()
    out = on_alert(g, alert(), T0, CFG, sup)
    assert out.effects == [] and g.incident_id is None
    assert out.suppressed == "silenced by alice: deploy"
    after = on_alert(g, alert(fp="f2"), T0 + timedelta(hours=1), CFG, sup)
    assert targets(after), "once the silence ends the alert pages"


def test_maintenance_window_from_config_mutes_pages() -> None:
    sup = Suppressions.from_config(CFG)  # cache upgrade 2026-12-24 22:00 .. 02:00 UTC
    a = Alert(fingerprint="c1", status="firing", rule="r", severity="critical",
              labels={"service": "cache"}, starts_at=T0)  # fmt: skip
    inside = datetime(2026, 12, 24, 23, tzinfo=UTC)
    assert on_alert(group(), a, inside, CFG, sup).suppressed == "maintenance: cache cluster upgrade"


def test_silence_during_an_open_incident_holds_escalation_but_not_the_resolution() -> None:
    sup = Suppressions.from_config(CFG)
    g = group()
    on_alert(g, alert(), T0, CFG, sup)  # level 1 paged at once (critical)
    sup.add_silence("s1", silence("host", "web-03", T0, T0 + timedelta(hours=2)))
    held = on_tick(g, T0 + timedelta(minutes=5), CFG, sup)
    assert targets(held) == [], "no escalation while silenced"
    assert [e.kind for e in held.events] == ["silenced"]
    assert on_tick(g, T0 + timedelta(minutes=6), CFG, sup).events == [], "said once"
    out = on_alert(g, alert(status="resolved"), T0 + timedelta(minutes=7), CFG, sup)
    assert {t for k, _, t in targets(out) if k == "resolve"} == {"U0ALICE", "#platform-alerts"}


def test_inhibition_needs_a_firing_source_with_equal_labels() -> None:
    sup = Suppressions.from_config(CFG)  # source_absent inhibits other alerts on the same host
    target = {"alertname": "cpu", "host": "web-03", "service": "search"}
    sup.set_source("src", {"alertname": "source_absent", "host": "web-04"})
    assert sup.reason("t", target, T0) is None, "another host: not inhibited"
    sup.set_source("src", {"alertname": "source_absent", "host": "web-03"})
    assert sup.reason("t", target, T0) == "inhibited by source_absent (alertname=source_absent)"
    assert sup.reason("src", {"alertname": "source_absent", "host": "web-03"}, T0) is None
    sup.set_source("src", None)
    assert sup.reason("t", target, T0) is None, "the source resolved"


def test_alerts_joining_a_notified_group_are_told_once_per_group_interval() -> None:
    g = group()
    on_alert(g, alert(), T0, CFG)
    joined = [on_alert(g, alert(fp=f"j{i}"), T0 + i * SECOND, CFG) for i in range(1, 6)]
    assert all(targets(o) == [] for o in joined), "no update per joining alert"
    assert targets(on_tick(g, T0 + timedelta(minutes=4, seconds=59), CFG)) == []
    # group_interval (5m) after the first page; level 2 is paged at the same moment
    update = [t for k, _, t in targets(on_tick(g, T0 + timedelta(minutes=5), CFG)) if k == "update"]
    assert {"U0ALICE", "#platform-alerts"} <= set(update)
    assert len(update) == len(set(update)), "one update per notified target"


def test_repeat_interval_reminds_when_nobody_is_left_to_escalate_to() -> None:
    cfg = Config.model_validate({**CFG.model_dump(by_alias=True),
                                 "route": {"team": "platform"}})  # fmt: skip
    g = GroupState(group_key="k")
    g.route.team = "platform"  # no escalation policy: the team channel only
    on_alert(g, alert(), T0, cfg)
    assert next_deadline(g) == T0 + timedelta(hours=4)
    out = on_tick(g, T0 + timedelta(hours=4), cfg)
    assert targets(out) == [("reminder", "slack", "#platform-alerts")]
    assert g.incident_id
    on_command(g, Command(action="ack", incident_id=g.incident_id, actor="bob", at=T0),
               T0 + timedelta(hours=5), cfg)  # fmt: skip
    assert targets(on_tick(g, T0 + timedelta(hours=9), cfg)) == [], "no reminder after ack"


def test_a_flapping_alert_sends_one_summary_and_holds_the_incident_open() -> None:
    g = group()
    on_alert(g, alert(), T0, CFG)
    notes = []
    for i in range(1, 12):
        status = "resolved" if i % 2 else "firing"
        out = on_alert(g, alert(status=status, at=T0 + i * 10 * SECOND), T0 + i * 10 * SECOND,
                       CFG)  # fmt: skip
        notes += targets(out)
    assert g.flapping and g.status == "triggered"
    assert [k for k, _, _ in notes].count("flapping") == 2, "one summary per notified target"
    assert [k for k, _, _ in notes if k != "flapping"] == ["resolve", "resolve", "trigger",
                                                           "trigger", "resolve", "resolve",
                                                           "trigger", "trigger"]  # fmt: skip
    # the last transition was a resolve: stable for a whole window, it resolves once
    out = on_tick(g, T0 + 110 * SECOND + timedelta(minutes=10), CFG)
    assert g.status == "resolved" and not g.flapping
    assert [k for k, _, _ in targets(out)] == ["resolve", "resolve"]


def test_delivery_receipts_join_the_timeline() -> None:
    g = group()
    page = on_alert(g, alert(), T0, CFG).notifications[0]
    r = DeliveryReceipt(notification_id=page.notification_id, incident_id=page.incident_id,
                        channel="slack_dm", target="U0ALICE", attempt=1, outcome="delivered",
                        latency_ms=120.0, at=T0)  # fmt: skip
    out = on_receipt(g, r, T0 + SECOND)
    assert [e.kind for e in out.events] == ["delivery"]
    assert out.events[0].details["notification_id"] == page.notification_id
    assert on_receipt(g, r, T0 + 2 * SECOND).events == [], "a redelivered receipt is logged once"


def test_reassign_tells_the_new_assignee_directly() -> None:
    g = group()
    on_alert(g, alert(), T0, CFG)
    assert g.incident_id
    cmd = Command(action="assign", incident_id=g.incident_id, actor="alice", assignee="dave",
                  at=T0)  # fmt: skip
    out = on_command(g, cmd, T0 + SECOND, CFG)
    assert ("update", "slack_dm", "U0DAVE") in targets(out)
    assert out.effects[-1].assignee == "dave"  # type: ignore[union-attr]


# -- properties across groups: what the runtime does with routing ----------------------

HOSTS = ["web-01", "web-02"]
transition = st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(HOSTS),
                       st.sampled_from(["firing", "resolved"]),
                       st.integers(min_value=0, max_value=2400))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(transition, max_size=60))
def test_no_incident_lost_and_at_most_one_open_incident_per_fingerprint(
    seq: list[tuple[str, str, str, int]],
) -> None:
    groups: dict[str, GroupState] = {}
    last: dict[str, tuple[str, str]] = {}  # fingerprint -> (last status, group key)
    now = T0
    for i, (name, host, status, gap) in enumerate(seq):
        now += timedelta(seconds=gap)
        labels = {"alertname": name, "service": "search", "host": host}
        a = Alert(event_id=f"e{i}", fingerprint=f"{name}@{host}", status=status,  # type: ignore[arg-type]
                  rule=name, severity="critical", labels=labels, starts_at=now,
                  ends_at=now if status == "resolved" else None)  # fmt: skip
        for routed in route(CFG, labels):
            gk = routed.group_key(labels)
            g = groups.setdefault(gk, GroupState(group_key=gk, route=routed.decision))
            for other in groups.values():
                on_tick(other, now, CFG)
            on_alert(g, a, now, CFG)
            last[a.fingerprint] = (status, gk)
    for fp, (status, gk) in last.items():
        g = groups[gk]
        member = g.members.get(fp)
        if status == "firing":  # no incident lost: a firing alert is in an open incident
            assert g.open and member is not None and member.status == "firing"
    open_ids = [g.incident_id for g in groups.values() if g.open]
    assert len(open_ids) == len(set(open_ids))
    for fp in last:
        holders = [g for g in groups.values() if g.open and fp in g.members
                   and g.members[fp].status == "firing"]  # fmt: skip
        assert len(holders) <= 1, "at most one open incident per fingerprint"
