"""Incident lifecycle decisions: `(state, event, now) -> (state, effects)`.

Alerts open, join and resolve incidents (dedup by fingerprint: a repeat is
counted, never a second incident); group_wait delays the first page (0 for
critical); escalation walks the policy's levels on timeouts, repeats it, stops
on acknowledgement and restarts when a snooze expires unresolved. Every change
is an IncidentEvent on the ledger; every page is a Notification with an id
derived from (incident, generation, step, target), so a re-emitted decision is
recognised downstream and delivered once. Resolve contract: every target that
was ever notified of an incident is told of its resolution.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from processors.incidents.oncall import on_call
from processors.incidents.state import GroupState, Member
from schemas.alerts import Alert, Severity
from schemas.commands import Command
from schemas.config.models import Config, EscalationPolicy
from schemas.incidents import AlertRef, Incident, IncidentEvent, IncidentEventKind, Priority
from schemas.notifications import Channel, Notification, NotificationKind

Effect = IncidentEvent | Notification | Incident
_SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
_CRITICALITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass
class Outcome:
    effects: list[Effect] = field(default_factory=list)

    @property
    def notifications(self) -> list[Notification]:
        return [e for e in self.effects if isinstance(e, Notification)]

    @property
    def events(self) -> list[IncidentEvent]:
        return [e for e in self.effects if isinstance(e, IncidentEvent)]


def priority(severity: Severity, criticality: str) -> Priority:
    """Impact (service criticality) x urgency (severity) -> P1 (worst) .. P5."""
    score = _SEVERITY_RANK[severity] + _CRITICALITY_RANK.get(criticality, 2)
    return ("P1", "P2", "P3", "P4", "P5", "P5", "P5")[score]


# -- alerts ----------------------------------------------------------------------------


def already_applied(st: GroupState, event_id: str) -> bool:
    """At-least-once delivery replays events after a crash: apply each one once."""
    if event_id in st.recent:
        return True
    st.recent.append(event_id)
    del st.recent[:-64]
    return False


def on_alert(st: GroupState, alert: Alert, now: datetime, cfg: Config) -> Outcome:
    out = Outcome()
    if already_applied(st, alert.event_id):
        return out
    fp = alert.fingerprint
    if alert.status == "pending":
        return out  # not yet firing: nobody is told about a pending alert
    if alert.status == "firing":
        reopen = (st.status == "resolved" and st.resolved_at is not None
                  and now - st.resolved_at <= cfg.grouping.reopen_window)  # fmt: skip
        if not st.open and not reopen:
            _open(st, alert, now, cfg, out)
        elif reopen:
            _reopen(st, alert, now, cfg, out)
        member = st.members.get(fp)
        if member is not None and member.status == "firing" and not reopen:
            # a repeat is counted, not announced: no page, no ledger line, no snapshot
            member.repeats += 1
            member.last_seen = now
            member.value = alert.value
            return out
        if member is not None and member.status == "firing":
            member.repeats += 1
        else:
            st.members[fp] = _member(alert, now)
            if len(st.members) > 1 or reopen:
                _event(st, out, "alert_added", now, alert.summary or alert.rule,
                       fingerprint=fp)  # fmt: skip
                if st.notified:
                    _notify_known(st, cfg, now, "update", out)
        if _SEVERITY_RANK[alert.severity] < _SEVERITY_RANK[st.severity]:
            st.severity = alert.severity
    else:  # resolved
        member = st.members.get(fp)
        if member is None or member.status == "resolved" or not st.open:
            return out
        member.status, member.last_seen = "resolved", now
        _event(st, out, "alert_resolved", now, f"{member.rule} resolved", fingerprint=fp)
        if not st.firing():
            _resolve(st, now, "tocsin", "all alerts resolved", cfg, out)
    _snapshot(st, cfg, now, out)
    return out


def _open(st: GroupState, alert: Alert, now: datetime, cfg: Config, out: Outcome) -> None:
    st.generation += 1
    st.opened += 1
    st.incident_id = _incident_id(st)
    st.status = "triggered"
    st.members = {}
    st.notified = []
    st.title = alert.summary or alert.rule
    st.severity = st.route.severity or alert.severity
    st.labels = dict(alert.labels)
    st.opened_at, st.acknowledged_at, st.resolved_at = now, None, None
    st.level = st.repeat = st.escalations = 0
    st.snoozed_until = st.next_escalation_at = None
    st.assignee = None
    wait = (cfg.grouping.group_wait_critical if st.severity == "critical"
            else cfg.grouping.group_wait)  # fmt: skip
    st.notify_at = now + wait
    _event(st, out, "opened", now, st.title, fingerprint=alert.fingerprint)
    if wait <= timedelta(0):
        _first_page(st, now, cfg, out)


def _reopen(st: GroupState, alert: Alert, now: datetime, cfg: Config, out: Outcome) -> None:
    st.generation += 1
    st.status = "triggered"
    st.resolved_at = st.acknowledged_at = st.snoozed_until = None
    st.level = st.repeat = 0
    _event(st, out, "reopened", now, f"{alert.rule} fired again", fingerprint=alert.fingerprint)
    st.notify_at = None
    _first_page(st, now, cfg, out)


def _member(alert: Alert, now: datetime) -> Member:
    return Member(
        fingerprint=alert.fingerprint, rule=alert.rule, status="firing",
        severity=alert.severity, labels=dict(alert.labels), value=alert.value,
        threshold=alert.threshold, first_seen=now, last_seen=now, summary=alert.summary,
        runbook_url=alert.runbook_url,
        anomaly_score=alert.anomaly.score if alert.anomaly else None,
    )  # fmt: skip


# -- commands --------------------------------------------------------------------------


def on_command(st: GroupState, cmd: Command, now: datetime, cfg: Config) -> Outcome:
    out = Outcome()
    if st.incident_id is None or cmd.incident_id != st.incident_id:
        return out
    if already_applied(st, cmd.event_id):
        return out
    actor = cmd.actor
    if cmd.action == "note":
        _event(st, out, "note", now, cmd.text, actor=actor)
    elif not st.open:
        return out  # acting on a resolved incident changes nothing
    elif cmd.action == "ack":
        if st.status == "triggered":
            st.status, st.acknowledged_at = "acknowledged", now
            st.next_escalation_at = st.notify_at = None  # no page after an ack
            _event(st, out, "acknowledged", now, f"acknowledged by {actor}", actor=actor)
            _notify_known(st, cfg, now, "update", out)
    elif cmd.action == "snooze" and cmd.duration is not None:
        st.status = "acknowledged"
        st.acknowledged_at = st.acknowledged_at or now
        st.snoozed_until = now + cmd.duration
        st.next_escalation_at = st.notify_at = None
        _event(st, out, "snoozed", now, f"snoozed for {cmd.duration} by {actor}", actor=actor,
               until=st.snoozed_until.isoformat())  # fmt: skip
        _notify_known(st, cfg, now, "update", out)
    elif cmd.action == "resolve":
        _resolve(st, now, actor, f"resolved by {actor}", cfg, out)
    elif cmd.action == "escalate":
        st.status = "triggered"
        _event(st, out, "escalated", now, f"escalated by {actor}", actor=actor)
        _escalate(st, now, cfg, out)
    elif cmd.action == "assign" and cmd.assignee:
        st.assignee = cmd.assignee
        _event(st, out, "assigned", now, f"assigned to {cmd.assignee} by {actor}", actor=actor)
        _notify_known(st, cfg, now, "update", out)
    _snapshot(st, cfg, now, out)
    return out


# -- time ------------------------------------------------------------------------------


def on_tick(st: GroupState, now: datetime, cfg: Config) -> Outcome:
    """Timers: group_wait expiry, escalation timeouts, snooze expiry."""
    out = Outcome()
    if st.status == "triggered" and st.notify_at is not None and now >= st.notify_at:
        _first_page(st, now, cfg, out)
    elif st.status == "triggered" and st.next_escalation_at and now >= st.next_escalation_at:
        _event(st, out, "escalated", now, "not acknowledged in time")
        _escalate(st, now, cfg, out)
    elif st.status == "acknowledged" and st.snoozed_until and now >= st.snoozed_until:
        st.status, st.snoozed_until, st.acknowledged_at = "triggered", None, None
        _event(st, out, "snooze_expired", now, "snooze expired, still unresolved")
        st.level = st.repeat = 0
        _page_level(st, now, cfg, "escalate", out)
    else:
        return out
    _snapshot(st, cfg, now, out)
    return out


def next_deadline(st: GroupState) -> datetime | None:
    """When this group next needs a tick (the runtime's timer wheel uses it)."""
    if st.status == "triggered":
        return st.notify_at or st.next_escalation_at
    if st.status == "acknowledged":
        return st.snoozed_until
    return None


# -- paging ----------------------------------------------------------------------------


def _policy(st: GroupState, cfg: Config) -> EscalationPolicy | None:
    pid = st.route.policy
    if pid is None and st.route.service:
        svc = cfg.service(st.route.service)
        pid = svc.escalation_policy if svc else None
    return cfg.policy(pid) if pid else None


def _first_page(st: GroupState, now: datetime, cfg: Config, out: Outcome) -> None:
    st.notify_at = None
    st.level = st.repeat = 0
    _page_level(st, now, cfg, "trigger", out)


def _escalate(st: GroupState, now: datetime, cfg: Config, out: Outcome) -> None:
    policy = _policy(st, cfg)
    if policy is None:
        st.next_escalation_at = None
        return
    level, repeat = st.level + 1, st.repeat
    if level >= len(policy.levels):
        if repeat >= policy.repeat:
            st.next_escalation_at = None  # the policy is exhausted: wait for a human
            return
        level, repeat = 0, repeat + 1
    st.level, st.repeat = level, repeat
    st.escalations += 1
    _page_level(st, now, cfg, "escalate", out)


def _page_level(
    st: GroupState, now: datetime, cfg: Config, kind: NotificationKind, out: Outcome
) -> None:
    policy = _policy(st, cfg)
    targets: list[tuple[Channel, str]] = []
    if policy is None:
        team = cfg.team(st.route.team) if st.route.team else None
        if team and team.slack_channel:
            targets.append(("slack", team.slack_channel))
        st.next_escalation_at = None
    else:
        level = policy.levels[st.level]
        chosen = level.targets
        if policy.round_robin:
            chosen = [level.targets[st.escalations % len(level.targets)]]
        for t in chosen:
            targets += _resolve_target(t.kind, t.ref, now, cfg)
        st.next_escalation_at = now + level.timeout
    # a page counter keeps ids unique when a level is paged again (e.g. after a snooze)
    st.pages += 1
    step = f"{kind}.{st.pages}.L{st.level}R{st.repeat}"
    for channel, target in targets:
        _notify(st, cfg, now, kind, channel, target, step, out)
    if targets:
        _event(st, out, "notified", now, f"{kind} level {st.level}: "
               + ", ".join(f"{c}:{t}" for c, t in targets), level=st.level)  # fmt: skip


def _resolve_target(kind: str, ref: str, now: datetime, cfg: Config) -> list[tuple[Channel, str]]:
    if kind == "user":
        user = cfg.user(ref)
        return [("slack_dm", user.slack_id or user.id)] if user else []
    if kind == "schedule":
        schedule = cfg.schedule(ref)
        who = on_call(schedule, now) if schedule else None
        return _resolve_target("user", who, now, cfg) if who else []
    if kind == "team_channel":
        team = cfg.team(ref)
        return [("slack", team.slack_channel)] if team and team.slack_channel else []
    return [("pagerduty", ref)]


def _notify_known(
    st: GroupState, cfg: Config, now: datetime, kind: NotificationKind, out: Outcome
) -> None:
    """Tell every target already notified (updates, resolutions): the resolve contract."""
    step = f"{kind}.{st.seq}"
    for channel, target in list(st.notified):
        _notify(st, cfg, now, kind, channel, target, step, out)


def _notify(
    st: GroupState,
    cfg: Config,
    now: datetime,
    kind: NotificationKind,
    channel: Channel,
    target: str,
    step: str,
    out: Outcome,
) -> None:
    assert st.incident_id is not None and st.opened_at is not None and st.status is not None
    if (channel, target) not in st.notified:
        st.notified.append((channel, target))
    lead = next(iter(st.members.values()), None)
    svc = cfg.service(st.route.service) if st.route.service else None
    nid = f"{st.incident_id}/{st.generation}/{step}/{channel}:{target}"
    out.effects.append(Notification(
        event_id=hashlib.sha256(nid.encode()).hexdigest()[:32], produced_at=now,
        notification_id=nid[:1024], incident_id=st.incident_id, kind=kind, channel=channel,
        target=target, title=st.title[:8192], status=st.status, severity=st.severity,
        priority=priority(st.severity, svc.criticality if svc else "medium"),
        service=st.route.service, team=st.route.team,
        summary=lead.summary if lead else "", labels=st.labels,
        value=lead.value if lead else None, threshold=lead.threshold if lead else None,
        anomaly_score=lead.anomaly_score if lead else None,
        runbook_url=lead.runbook_url if lead else None, assignee=st.assignee,
        escalation_level=st.level, opened_at=st.opened_at, at=now,
    ))  # fmt: skip


def _resolve(
    st: GroupState, now: datetime, actor: str, why: str, cfg: Config, out: Outcome
) -> None:
    st.status, st.resolved_at = "resolved", now
    st.notify_at = st.next_escalation_at = st.snoozed_until = None
    _event(st, out, "resolved", now, why, actor=actor)
    _notify_known(st, cfg, now, "resolve", out)


# -- ledger and snapshot ---------------------------------------------------------------


def _event(
    st: GroupState,
    out: Outcome,
    kind: IncidentEventKind,
    now: datetime,
    message: str,
    actor: str = "tocsin",
    **details: Any,
) -> None:
    assert st.incident_id is not None
    st.seq += 1
    out.effects.append(IncidentEvent(
        event_id=f"{st.incident_id}:{st.seq}", produced_at=now, incident_id=st.incident_id,
        seq=st.seq, kind=kind, at=now, actor=actor, message=message[:8192], details=details,
    ))  # fmt: skip


def _snapshot(st: GroupState, cfg: Config, now: datetime, out: Outcome) -> None:
    if st.incident_id is None or st.status is None or st.opened_at is None:
        return
    st.version += 1
    svc = cfg.service(st.route.service) if st.route.service else None
    out.effects.append(Incident(
        event_id=f"{st.incident_id}@{st.version}", produced_at=now,
        incident_id=st.incident_id, group_key=st.group_key[:1024], version=st.version,
        status=st.status, title=st.title[:8192], severity=st.severity,
        priority=priority(st.severity, svc.criticality if svc else "medium"),
        service=st.route.service, team=st.route.team, labels=st.labels,
        alerts=[AlertRef(fingerprint=m.fingerprint, rule=m.rule, status=m.status,
                         severity=m.severity, labels=m.labels, value=m.value,
                         threshold=m.threshold, first_seen=m.first_seen,
                         last_seen=m.last_seen, repeats=m.repeats)
                for m in st.members.values()],
        opened_at=st.opened_at, acknowledged_at=st.acknowledged_at,
        resolved_at=st.resolved_at, assignee=st.assignee,
        escalation_policy=st.route.policy, escalation_level=st.level,
        snoozed_until=st.snoozed_until,
        notified_targets=[f"{c}:{t}" for c, t in st.notified],
    ))  # fmt: skip


def group_id(group_key: str) -> str:
    """Short stable id of a group: the Kafka key of its state, inside every incident id."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:12]


def group_of(incident_id: str) -> str | None:
    """The group id an incident id belongs to (commands carry only the incident id)."""
    parts = incident_id.split("-")
    return parts[1] if len(parts) == 3 and parts[0] == "inc" else None


def _incident_id(st: GroupState) -> str:
    return f"inc-{group_id(st.group_key)}-{st.opened}"
