"""Incident lifecycle decisions: `(state, event, now) -> effects`, state updated in place.

Alerts open, join and resolve incidents (dedup by fingerprint: a repeat is
counted, never a second incident); group_wait delays the first page (0 for
critical), group_interval batches updates about alerts that join later,
repeat_interval reminds while nobody acknowledged and nobody is left to
escalate to. Escalation walks the policy's levels on timeouts, repeats it,
stops on acknowledgement and restarts when a snooze expires unresolved.
Silences, maintenance windows and inhibition mute pages (never the ledger);
an alert that flaps is announced once and holds the incident open until it is
stable for a whole flap window. A group tracks its first alerts one by one and
summarises the rest in a bounded digest (storm.py): an alert storm costs O(1)
per alert and a bounded state, and the incident says how many it summarised.
Every change is an IncidentEvent; every page a Notification with a deterministic
id. Resolve contract: every target that was ever notified of an incident is told
of its resolution, suppressed or not.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from processors.incidents import storm
from processors.incidents.ledger import (
    SEVERITY_RANK,
    Outcome,
    digest,
    event,
    group_id,
    group_priority,
    snapshot,
)
from processors.incidents.paging import escalate, first_page, notify, notify_known
from processors.incidents.paging import resolve_target as _targets
from processors.incidents.state import GroupState, Member
from processors.incidents.storm import Digest
from processors.incidents.suppression import NO_SUPPRESSION, Suppressions
from schemas.alerts import Alert
from schemas.commands import Command
from schemas.config.models import Config
from schemas.incidents import IncidentEventKind
from schemas.notifications import DeliveryReceipt

# while every firing alert of a group is suppressed, due pages are re-checked this often
RECHECK = timedelta(seconds=15)
_RECENT = 128


def already_applied(st: GroupState, event_id: str) -> bool:
    """At-least-once delivery replays events after a crash: apply each one once."""
    if event_id in st.recent:
        return True
    st.recent.append(event_id)
    del st.recent[:-_RECENT]
    return False


# -- alerts ----------------------------------------------------------------------------


def on_alert(
    st: GroupState, alert: Alert, now: datetime, cfg: Config,
    sup: Suppressions = NO_SUPPRESSION,
) -> Outcome:  # fmt: skip
    out = Outcome()
    if alert.status == "pending" or already_applied(st, alert.event_id):
        return out  # pending: not yet firing, nobody is told
    fp = alert.fingerprint
    reason = sup.reason(fp, alert.labels, now)
    if alert.status == "resolved":
        _alert_resolved(st, fp, now, cfg, out)
        return out
    reopen = (st.status == "resolved" and st.resolved_at is not None
              and now - st.resolved_at <= cfg.grouping.reopen_window)  # fmt: skip
    if not st.open:
        if reason is not None:
            out.suppressed = reason  # opens nothing; the runtime counts and logs it
            return out
        if reopen:
            _reopen(st, alert, now, cfg, out)
        else:
            _open(st, alert, now, cfg, out)
    member = st.members.get(fp)
    if member is None and not _room(st, alert, cfg):
        _summarise(st, alert, reason, now, cfg, out, reopen)
        return out
    if member is not None and member.status == "firing" and not reopen:
        # a repeat is counted, not announced: no page, no ledger line, no snapshot
        member.repeats += 1
        member.last_seen, member.value = now, alert.value
        return out
    if member is None:
        member = st.members[fp] = _member(alert, now)
        st.member_bytes += storm.member_bytes(alert, _flips(cfg))
        if len(st.members) > 1:
            event(st, out, "alert_added", now, alert.summary or alert.rule, fingerprint=fp)
            _schedule_update(st, now, cfg)
    else:
        member.status, member.last_seen, member.value = "firing", now, alert.value
        if alert.anomaly is not None:
            member.anomaly_score, member.anomaly = alert.anomaly.score, _detail(alert)
        member.transitions.append(now)
        if not reopen:
            event(st, out, "alert_added", now, f"{alert.rule} fires again", fingerprint=fp)
            _schedule_update(st, now, cfg)
        _check_flapping(st, member, now, cfg, out)
    _announce_member(st, member, reason, now, out)
    _raise_severity(st, alert, now, cfg, out)
    snapshot(st, cfg, now, out)
    return out


def _raise_severity(st: GroupState, alert: Alert, now: datetime, cfg: Config,
                    out: Outcome) -> None:  # fmt: skip
    if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[st.severity] and not st.route.severity:
        before = group_priority(st, cfg)
        st.severity = alert.severity
        if group_priority(st, cfg) != before:
            event(st, out, "priority_changed", now, f"{before} -> {group_priority(st, cfg)}",
                  severity=st.severity)  # fmt: skip


def _flips(cfg: Config) -> int:
    """Flips a member remembers: enough to tell flapping (see _check_flapping)."""
    return min(cfg.grouping.flap_threshold, 64) + 1


def _room(st: GroupState, alert: Alert, cfg: Config) -> bool:
    """Whether a new alert is tracked one by one: not once the group summarises (the
    first alerts are tracked, every later one summarised), nor beyond the bounds."""
    if st.storm is not None or len(st.members) >= storm.MAX_TRACKED:
        return False
    return st.member_bytes + storm.member_bytes(alert, _flips(cfg)) <= storm.MEMBER_BYTES


def _summarise(st: GroupState, alert: Alert, reason: str | None, now: datetime,
               cfg: Config, out: Outcome, reopen: bool) -> None:  # fmt: skip
    """An alert beyond the tracked members joins the digest: no ledger entry, page or
    snapshot of its own (the digest is told on the ledger every storm.EVERY, and to the
    notified targets with the next group_interval update), O(its labels)."""
    before = st.seq
    if st.storm is None:
        st.storm = Digest(first_seen=now, last_seen=now)
        event(st, out, "storm", now, f"storm: alerts beyond the first {len(st.members)} "
              "are summarised", tracked=len(st.members))  # fmt: skip
    if storm.fire(st.storm, alert.fingerprint, alert.labels, now, reason is not None):
        if st.storm_at is None:
            st.storm_at = now + storm.EVERY
        _schedule_update(st, now, cfg)
        _raise_severity(st, alert, now, cfg, out)
    if reopen or st.seq != before:
        snapshot(st, cfg, now, out)


def _report_storm(st: GroupState, now: datetime, out: Outcome) -> None:
    d = st.storm
    if d is None or d.reported == d.events:
        return
    d.reported = d.events
    told = digest(st)
    assert told is not None
    event(st, out, "storm", now, told.line(), summarised=told.summarised, firing=told.firing,
          resolved=told.resolved, events=told.events)  # fmt: skip


def _alert_resolved(st: GroupState, fp: str, now: datetime, cfg: Config, out: Outcome) -> None:
    member = st.members.get(fp)
    if member is None and st.storm is not None:
        # counted even when the incident is resolved: the digest stays truthful for a reopen
        if storm.resolve(st.storm, fp, now) and st.open:
            if st.storm_at is None:
                st.storm_at = now + storm.EVERY
            if st.quiet() and not st.flapping:
                _report_storm(st, now, out)
                _resolve(st, now, "tocsin", "all alerts resolved", cfg, out)
                snapshot(st, cfg, now, out)
        return
    if member is None or member.status == "resolved" or not st.open:
        return
    member.status, member.last_seen = "resolved", now
    member.transitions.append(now)
    event(st, out, "alert_resolved", now, f"{member.rule} resolved", fingerprint=fp)
    _check_flapping(st, member, now, cfg, out)
    if st.quiet() and not st.flapping:
        _report_storm(st, now, out)
        _resolve(st, now, "tocsin", "all alerts resolved", cfg, out)
    snapshot(st, cfg, now, out)


def _open(st: GroupState, alert: Alert, now: datetime, cfg: Config, out: Outcome) -> None:
    st.generation += 1
    st.opened += 1
    # derived from the opening alert, not from a counter alone: a group evicted after
    # its reopen window starts again at opened=1 without reusing an incident id
    tag = hashlib.sha256(f"{st.opened}/{alert.event_id}".encode()).hexdigest()[:10]
    st.incident_id = f"inc-{group_id(st.group_key)}-{tag}"
    st.status = "triggered"
    st.members, st.notified = {}, []
    st.member_bytes, st.storm, st.storm_at = 0, None, None
    st.title = alert.summary or alert.rule
    st.severity = st.route.severity or alert.severity
    st.labels = dict(alert.labels)
    st.opened_at, st.acknowledged_at, st.resolved_at = now, None, None
    st.level = st.repeat = st.escalations = 0
    st.snoozed_until = st.next_escalation_at = st.update_at = st.remind_at = None
    st.last_notified_at, st.flapping, st.flap_clear_at, st.suppressed = None, False, None, None
    st.assignee = st.priority = None
    wait = (cfg.grouping.group_wait_critical if st.severity == "critical"
            else cfg.grouping.group_wait)  # fmt: skip
    st.notify_at = now + wait
    event(st, out, "opened", now, st.title, fingerprint=alert.fingerprint,
          priority=group_priority(st, cfg))  # fmt: skip
    if wait <= timedelta(0):
        first_page(st, now, cfg, out)


def _reopen(st: GroupState, alert: Alert, now: datetime, cfg: Config, out: Outcome) -> None:
    st.generation += 1
    st.status = "triggered"
    st.resolved_at = st.acknowledged_at = st.snoozed_until = None
    st.level = st.repeat = 0
    event(st, out, "reopened", now, f"{alert.rule} fired again", fingerprint=alert.fingerprint)
    first_page(st, now, cfg, out)


def _detail(alert: Alert) -> dict[str, Any] | None:
    return alert.anomaly.model_dump(mode="json") if alert.anomaly is not None else None


def _member(alert: Alert, now: datetime) -> Member:
    return Member(
        fingerprint=alert.fingerprint, rule=alert.rule, status="firing",
        severity=alert.severity, labels=dict(alert.labels), value=alert.value,
        threshold=alert.threshold, first_seen=now, last_seen=now, summary=alert.summary,
        runbook_url=alert.runbook_url,
        anomaly_score=alert.anomaly.score if alert.anomaly else None, transitions=[now],
        anomaly=_detail(alert),
    )  # fmt: skip


def _schedule_update(st: GroupState, now: datetime, cfg: Config) -> None:
    """group_interval: alerts joining a notified group are told in one batched update."""
    if st.notified and st.update_at is None:
        last = st.last_notified_at or now
        st.update_at = max(now, last + cfg.grouping.group_interval)


def _check_flapping(
    st: GroupState, member: Member, now: datetime, cfg: Config, out: Outcome
) -> None:
    window = cfg.grouping.flap_window
    # the last flap_threshold flips tell whether it flaps: a member's state stays bounded
    member.transitions = [t for t in member.transitions if now - t <= window][
        -cfg.grouping.flap_threshold :
    ]
    if st.flapping:
        st.flap_clear_at = now + window  # stable only after a whole quiet window
    elif len(member.transitions) >= cfg.grouping.flap_threshold:
        st.flapping, st.flap_clear_at = True, now + window
        st.update_at = None  # one summary instead of an update per flip
        event(st, out, "flapping", now, f"{member.rule} changed state "
              f"{len(member.transitions)} times in {window}", fingerprint=member.fingerprint,
              flapping=True)  # fmt: skip
        if st.suppressed is None:
            notify_known(st, cfg, now, "flapping", out)


def _announce_member(
    st: GroupState, member: Member, reason: str | None, now: datetime, out: Outcome
) -> None:
    if reason == member.suppressed:
        return
    member.suppressed = reason
    if reason is not None:
        event(st, out, _kind(reason), now, reason, fingerprint=member.fingerprint)


def _kind(reason: str | None) -> IncidentEventKind:
    return "inhibited" if reason and reason.startswith("inhibited") else "silenced"


# -- commands --------------------------------------------------------------------------


def on_command(st: GroupState, cmd: Command, now: datetime, cfg: Config) -> Outcome:
    out = Outcome()
    if st.incident_id is None or cmd.incident_id != st.incident_id:
        return out
    if cmd.tenant != st.tenant:
        # a credential of one tenant never acts on another's incident: not applied, and
        # the runtime dead-letters the command with this reason
        out.refused = (f"Command.tenant: {cmd.tenant!r} may not act on incident "
                       f"{st.incident_id} (another tenant's)")  # fmt: skip
        return out
    if already_applied(st, cmd.event_id):
        return out
    actor = cmd.actor
    if cmd.action == "note":
        event(st, out, "note", now, cmd.text, actor=actor)
    elif not st.open:
        return out  # acting on a resolved incident changes nothing
    elif cmd.action == "ack":
        if st.status == "triggered":
            st.status, st.acknowledged_at = "acknowledged", now
            st.next_escalation_at = st.notify_at = st.remind_at = None  # no page after an ack
            event(st, out, "acknowledged", now, f"acknowledged by {actor}", actor=actor)
            notify_known(st, cfg, now, "update", out)
    elif cmd.action == "snooze" and cmd.duration is not None:
        st.status = "acknowledged"
        st.acknowledged_at = st.acknowledged_at or now
        st.snoozed_until = now + cmd.duration
        st.next_escalation_at = st.notify_at = st.remind_at = None
        event(st, out, "snoozed", now, f"snoozed for {cmd.duration} by {actor}", actor=actor,
              until=st.snoozed_until.isoformat())  # fmt: skip
        notify_known(st, cfg, now, "update", out)
    elif cmd.action == "resolve":
        _resolve(st, now, actor, f"resolved by {actor}", cfg, out)
    elif cmd.action == "escalate":
        st.status, st.snoozed_until, st.notify_at = "triggered", None, None
        event(st, out, "escalated", now, f"escalated by {actor}", actor=actor)
        escalate(st, now, cfg, out)
    elif cmd.action == "assign" and cmd.assignee:
        st.assignee = cmd.assignee
        event(st, out, "assigned", now, f"assigned to {cmd.assignee} by {actor}", actor=actor)
        notify_known(st, cfg, now, "update", out)
        known = set(st.notified)
        for channel, target in _targets("user", cmd.assignee, now, cfg):
            if (channel, target) not in known:  # the new assignee hears about it directly
                notify(st, cfg, now, "update", channel, target, f"assign.{st.pages}", out)
    elif cmd.action == "priority" and cmd.priority is not None:
        before = group_priority(st, cfg)
        st.priority = cmd.priority
        if cmd.priority == before:
            return out
        event(st, out, "priority_changed", now, f"{before} -> {cmd.priority} by {actor}",
              actor=actor, priority=cmd.priority)  # fmt: skip
        notify_known(st, cfg, now, "update", out)
    else:
        return out
    snapshot(st, cfg, now, out)
    return out


def on_receipt(st: GroupState, receipt: DeliveryReceipt, now: datetime) -> Outcome:
    """A delivery attempt from the notifier joins the incident's timeline."""
    out = Outcome()
    if st.incident_id != receipt.incident_id or already_applied(st, receipt.event_id):
        return out
    event(st, out, "delivery", now,
          f"{receipt.channel}:{receipt.target} {receipt.outcome} (attempt {receipt.attempt})"
          + (f": {receipt.error}" if receipt.error else ""),
          notification_id=receipt.notification_id, outcome=receipt.outcome,
          attempt=receipt.attempt, external_ref=receipt.external_ref)  # fmt: skip
    return out


# -- time ------------------------------------------------------------------------------


def on_tick(
    st: GroupState, now: datetime, cfg: Config, sup: Suppressions = NO_SUPPRESSION
) -> Outcome:
    """Timers: group_wait, escalation, group_interval, repeat_interval, snooze, flapping."""
    out = Outcome()
    if not st.open:
        return out
    before = st.seq
    if st.flapping and st.flap_clear_at is not None and now >= st.flap_clear_at:
        st.flapping, st.flap_clear_at = False, None
        event(st, out, "flapping", now, "stable for a whole flap window", flapping=False)
        if st.quiet():
            _resolve(st, now, "tocsin", "all alerts resolved", cfg, out)
            snapshot(st, cfg, now, out)
            return out
    if st.status == "acknowledged" and st.snoozed_until and now >= st.snoozed_until:
        st.status, st.snoozed_until, st.acknowledged_at = "triggered", None, None
        event(st, out, "snooze_expired", now, "snooze expired, still unresolved")
        st.level = st.repeat = -1  # the next escalation step pages level 0 again
        st.next_escalation_at = now
    if st.storm_at is not None and now >= st.storm_at:
        st.storm_at = None
        _report_storm(st, now, out)
    if _due(st, now) and not _suppressed(st, now, sup, out):
        _fire_due(st, now, cfg, out)
    if st.seq != before:
        snapshot(st, cfg, now, out)
    return out


def _due(st: GroupState, now: datetime) -> bool:
    pending = [st.update_at]
    if st.status == "triggered":
        pending += [st.notify_at, st.next_escalation_at, st.remind_at]
    return any(t is not None and now >= t for t in pending)


def _suppressed(st: GroupState, now: datetime, sup: Suppressions, out: Outcome) -> bool:
    """Pages wait while every firing alert is silenced or inhibited; the ledger says so."""
    reasons = [sup.reason(m.fingerprint, m.labels, now) for m in st.firing()]
    d = st.storm
    if d is not None and d.firing > 0:
        # summarised alerts are judged by the digest's sample of them: a silence that
        # covers every sampled firing one holds the pages (no firing sample: it pages)
        sampled = [sup.reason(s.fingerprint, s.labels, now)
                   for s in d.sample if s.status == "firing"]  # fmt: skip
        reasons += sampled or [None]
    reason = reasons[0] if reasons and all(reasons) else None
    if reason != st.suppressed:
        st.suppressed = reason
        event(st, out, _kind(reason), now, reason or "no longer silenced or inhibited",
              active=reason is not None)  # fmt: skip
    if reason is None:
        return False
    out.suppressed = reason
    for name in ("notify_at", "next_escalation_at", "update_at", "remind_at"):
        if getattr(st, name) is not None and now >= getattr(st, name):
            setattr(st, name, now + RECHECK)
    return True


def _fire_due(st: GroupState, now: datetime, cfg: Config, out: Outcome) -> None:
    if st.status == "triggered":
        if st.notify_at is not None and now >= st.notify_at:
            first_page(st, now, cfg, out)
            st.update_at = None  # the first page already names every member
        elif st.next_escalation_at is not None and now >= st.next_escalation_at:
            if st.level >= 0:  # (below zero: a snooze expired and the policy starts over)
                event(st, out, "escalated", now, "not acknowledged in time")
            escalate(st, now, cfg, out)
        if st.remind_at is not None and now >= st.remind_at:
            st.remind_at = now + cfg.grouping.repeat_interval
            notify_known(st, cfg, now, "reminder", out)
    if st.update_at is not None and now >= st.update_at:
        st.update_at = None
        if not st.flapping:
            notify_known(st, cfg, now, "update", out)


def next_deadline(st: GroupState, cfg: Config | None = None) -> datetime | None:
    """When this group next needs a tick (the runtime's timer uses it).

    A resolved group is due once its reopen window has passed, so the runtime can
    forget it (see `expired`)."""
    if st.status == "resolved":
        if cfg is None or st.resolved_at is None:
            return None
        return st.resolved_at + cfg.grouping.reopen_window
    pending = [st.update_at, st.flap_clear_at, st.storm_at]
    if st.status == "triggered":
        pending += [st.notify_at, st.next_escalation_at, st.remind_at]
    elif st.status == "acknowledged":
        pending.append(st.snoozed_until)
    return min((t for t in pending if t is not None), default=None)


def expired(st: GroupState, now: datetime, cfg: Config) -> bool:
    """A resolved group past its reopen window holds nothing worth keeping."""
    return (st.status == "resolved" and st.resolved_at is not None
            and now - st.resolved_at > cfg.grouping.reopen_window)  # fmt: skip


def _resolve(
    st: GroupState, now: datetime, actor: str, why: str, cfg: Config, out: Outcome
) -> None:
    st.status, st.resolved_at = "resolved", now
    st.notify_at = st.next_escalation_at = st.snoozed_until = None
    st.update_at = st.remind_at = st.flap_clear_at = st.storm_at = None
    st.flapping = False
    event(st, out, "resolved", now, why, actor=actor)
    notify_known(st, cfg, now, "resolve", out)  # suppressed or not: the resolve contract
