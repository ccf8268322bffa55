"""Alert transitions built from rule state: a deterministic envelope, so a replay after
a crash and a backtest produce the very same events as the original run."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from processors.anomaly import AnomalySeries, AnomalyVerdict
from processors.anomaly.recent import SLOT_S
from processors.anomaly.words import rarity
from processors.rules.compiled import CompiledRule, render
from processors.rules.condition import FIRING, INACTIVE, PENDING
from processors.rules.state import Group, GroupKey
from schemas.alerts import Alert, AnomalyDetail

STATUS = {PENDING: "pending", FIRING: "firing", INACTIVE: "resolved"}


def at_time(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def event_id(fingerprint: str, status: str, at: float) -> str:
    """Same transition, same id: consumers deduplicate on it."""
    return hashlib.sha256(f"{fingerprint}:{status}:{at!r}".encode()).hexdigest()[:32]


def rule_alert(
    r: CompiledRule,
    key: GroupKey,
    g: Group,
    phase: int,
    at: float,
    value: float | None,
    window: tuple[float, float] | None,
    early: bool = False,
) -> Alert:
    rule = r.rule
    cond = rule.condition
    status = STATUS[phase]
    fp = r.fingerprint(key)
    labels = {**r.group_labels(key), **rule.labels, "alertname": rule.name}
    shown = value if value is not None else g.value
    threshold = (
        cond.threshold if cond else rule.absent_for.total_seconds() if rule.absent_for else None
    )
    # produced_at is the event time of the decision, not the wall clock: two runs over
    # the same input produce byte-identical transitions
    when = at_time(at)
    return Alert(
        event_id=event_id(fp, status, at),
        tenant=r.tenant_of(key),
        produced_at=when,
        fingerprint=fp,
        status=status,
        rule=rule.name,
        source="rule",
        severity=rule.severity,
        labels=labels,
        summary=render(
            rule.summary,
            labels,
            value=shown,
            threshold=threshold,
            op=cond.op if cond else ">",
            rule=rule.name,
        ),
        runbook_url=render(rule.runbook_url, labels) if rule.runbook_url else None,
        value=shown,
        threshold=threshold,
        # Prometheus' startsAt: when it started firing; a pending says when it began
        starts_at=at_time(min(g.active_since if phase == PENDING else g.fired_at, at)),
        pending_since=at_time(g.active_since) if cond and cond.for_ else None,
        ends_at=when if status == "resolved" else None,
        window_start=at_time(window[0]) if window else None,
        window_end=at_time(window[1]) if window else None,
        early=early,
    )


def anomaly_alert(
    r: CompiledRule,
    key: GroupKey,
    g: Group,
    detector: AnomalySeries,
    series: str,
    verdict: AnomalyVerdict,
    value: float,
    at: float,
) -> Alert:
    """The transition of a group that `series`' detector decided ("" for a window
    rule's, whose detector scores the group's own value)."""
    rule = r.rule
    fp = r.fingerprint(key)
    status = verdict.transition or "firing"
    labels = {**r.group_labels(key), **rule.labels, "alertname": rule.name}
    words = rarity(verdict.rarity)
    detail = AnomalyDetail(
        score=verdict.rarity,
        expected=verdict.expected,
        lower=verdict.lower,
        upper=verdict.upper,
        detector=r.anomaly.detector if r.anomaly else "likelihood",
        rarity=words,
        recent=detector.last_hours(),
        slot_s=SLOT_S,
        series=series[:1024] or None,
    )
    summary = render(
        rule.summary,
        labels,
        value=value,
        threshold=verdict.expected,
        op="~",
        rule=rule.name,
        score=verdict.rarity,
        expected=verdict.expected,
        rarity=words,
    )
    return Alert(
        event_id=event_id(fp, status, at),
        tenant=r.tenant_of(key),
        produced_at=at_time(at),
        fingerprint=fp,
        status=status,
        rule=rule.name,
        source="anomaly",
        severity=rule.severity,
        labels=labels,
        summary=summary,
        runbook_url=render(rule.runbook_url, labels) if rule.runbook_url else None,
        value=value,
        threshold=None,
        starts_at=at_time(min(g.active_since, at)),
        ends_at=at_time(at) if status == "resolved" else None,
        anomaly=detail,
    )
