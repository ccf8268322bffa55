"""Who is told, and under which id: escalation levels, targets and notifications.

A notification id is (incident, generation, step, target); the step carries a
page counter, so a level paged again (after a snooze, on a repeat of the policy)
gets new ids while a replayed decision re-emits the same ones.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from processors.incidents.index import index
from processors.incidents.ledger import (
    MAX_SHORT,
    Outcome,
    anomaly_detail,
    aware,
    build,
    digest,
    event,
    group_priority,
)
from processors.incidents.oncall import on_call
from processors.incidents.state import GroupState
from schemas.config.models import Config, EscalationPolicy
from schemas.notifications import Channel, Notification, NotificationKind


def policy_of(st: GroupState, cfg: Config) -> EscalationPolicy | None:
    pid = st.route.policy
    if pid is None and st.route.service:
        svc = index(cfg).services.get(st.route.service)
        pid = svc.escalation_policy if svc else None
    return index(cfg).policies.get(pid) if pid else None


def first_page(st: GroupState, now: datetime, cfg: Config, out: Outcome) -> None:
    st.notify_at = None
    st.level = st.repeat = 0
    page_level(st, now, cfg, "trigger", out)


def escalate(st: GroupState, now: datetime, cfg: Config, out: Outcome) -> None:
    """Page the next level; when the policy (and its repeats) is exhausted, remind instead."""
    policy = policy_of(st, cfg)
    if policy is None:
        st.next_escalation_at = None
        return
    # level -1: a snooze expired, the policy starts over at its first level
    level, repeat = (st.level + 1, st.repeat) if st.level >= 0 else (0, 0)
    if level >= len(policy.levels):
        if repeat >= policy.repeat:
            st.next_escalation_at = None  # nobody left to escalate to: remind (repeat_interval)
            st.remind_at = now + cfg.grouping.repeat_interval
            return
        level, repeat = 0, repeat + 1
    st.level, st.repeat = level, repeat
    st.escalations += 1
    page_level(st, now, cfg, "escalate", out)


def page_level(
    st: GroupState, now: datetime, cfg: Config, kind: NotificationKind, out: Outcome
) -> None:
    policy = policy_of(st, cfg)
    targets: list[tuple[Channel, str]] = []
    if policy is None:
        team = index(cfg).teams.get(st.route.team) if st.route.team else None
        if team and team.slack_channel:
            targets.append(("slack", team.slack_channel))
        st.next_escalation_at = None
        st.remind_at = now + cfg.grouping.repeat_interval
    else:
        level = policy.levels[st.level]
        chosen = level.targets
        if policy.round_robin:
            chosen = [level.targets[st.escalations % len(level.targets)]]
        for t in chosen:
            targets += resolve_target(t.kind, t.ref, now, cfg)
        # a person a level names twice (as a user and as the schedule's on-call, or
        # two schedules with the same on-call) is told once, under one id
        targets = list(dict.fromkeys(targets))
        st.next_escalation_at = now + level.timeout
    st.pages += 1
    step = f"{kind}.{st.pages}.L{st.level}R{st.repeat}"
    for channel, target in targets:
        notify(st, cfg, now, kind, channel, target, step, out)
    if targets:
        st.last_notified_at = now
        # levels count from 1 for people, as the Slack messages and pages show them
        event(st, out, "notified", now, f"{kind} level {st.level + 1}: "
              + ", ".join(f"{c}:{t}" for c, t in targets), level=st.level)  # fmt: skip


# targets that name an alias the notifier resolves (a routing key, an API key, a URL)
_ALIASED: dict[str, Channel] = {"pagerduty": "pagerduty", "pager": "pagerduty",
                                "ilert": "ilert", "webhook": "webhook"}  # fmt: skip


def resolve_target(kind: str, ref: str, now: datetime, cfg: Config) -> list[tuple[Channel, str]]:
    """The (channel, target) pairs one escalation target pages now: nobody for a user,
    schedule or team this config does not know (the config check refuses those)."""
    if kind in _ALIASED:
        return [(_ALIASED[kind], ref)]
    if kind == "slack":
        # channel ids pass through; names are looked up by the Slack sink as "#name"
        return [("slack", ref if ref.startswith("#") or ref[:1].isupper() else f"#{ref}")]
    if kind == "user":
        user = index(cfg).users.get(ref)
        return [("slack_dm", user.slack_id or user.id)] if user else []
    if kind == "schedule":
        schedule = index(cfg).schedules.get(ref)
        who = on_call(schedule, now) if schedule else None
        return resolve_target("user", who, now, cfg) if who else []
    if kind == "team_channel":
        team = index(cfg).teams.get(ref)
        return [("slack", team.slack_channel)] if team and team.slack_channel else []
    raise ValueError(f"escalation target kind {kind!r} is not one tocsin can page")


def notify_known(
    st: GroupState, cfg: Config, now: datetime, kind: NotificationKind, out: Outcome
) -> None:
    """Tell every target already notified (updates, resolutions): the resolve contract."""
    st.pages += 1
    step = f"{kind}.{st.pages}"
    for channel, target in list(st.notified):
        notify(st, cfg, now, kind, channel, target, step, out)
    if st.notified:
        st.last_notified_at = now


def notify(
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
    nid = f"{st.incident_id}/{st.generation}/{step}/{channel}:{target}"
    ok = aware(now, st.opened_at) and len(target) <= MAX_SHORT
    out.effects.append(build(
        Notification, ok, schema_version=1,
        event_id=hashlib.sha256(nid.encode()).hexdigest()[:32], tenant=st.tenant, produced_at=now,
        notification_id=nid[:1024], incident_id=st.incident_id, kind=kind, channel=channel,
        target=target, title=st.title[:8192], status=st.status, severity=st.severity,
        priority=group_priority(st, cfg), service=st.route.service, team=st.route.team,
        summary=lead.summary if lead else "", labels=st.labels,
        value=lead.value if lead else None, threshold=lead.threshold if lead else None,
        anomaly_score=lead.anomaly_score if lead else None,
        anomaly=anomaly_detail(lead.anomaly) if lead else None,
        runbook_url=lead.runbook_url if lead else None, assignee=st.assignee,
        escalation_level=max(st.level, 0), opened_at=st.opened_at, at=now, storm=digest(st),
    ))  # fmt: skip
