"""What the core emits: ledger entries, snapshots, ids and priority.

Every id is derived from the group's state, never from a clock or a random
source, so a decision replayed after a crash re-emits byte-identical ids that
consumers recognise (IncidentEvent: incident:seq; Incident: incident@version).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.incidents.index import index
from processors.incidents.state import GroupState
from schemas.alerts import Severity
from schemas.config.models import Config
from schemas.incidents import AlertRef, Incident, IncidentEvent, IncidentEventKind, Priority
from schemas.notifications import Notification

Effect = IncidentEvent | Notification | Incident
SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
_CRITICALITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass
class Outcome:
    """The effects of one decision, in order; `suppressed` says why nothing paged."""

    effects: list[Effect] = field(default_factory=list)
    suppressed: str | None = None

    @property
    def notifications(self) -> list[Notification]:
        return [e for e in self.effects if isinstance(e, Notification)]

    @property
    def events(self) -> list[IncidentEvent]:
        return [e for e in self.effects if isinstance(e, IncidentEvent)]


def priority(severity: Severity, criticality: str) -> Priority:
    """Impact (service criticality) x urgency (severity) -> P1 (worst) .. P5."""
    score = SEVERITY_RANK[severity] + _CRITICALITY_RANK.get(criticality, 2)
    return ("P1", "P2", "P3", "P4", "P5", "P5", "P5")[score]


def group_priority(st: GroupState, cfg: Config) -> Priority:
    svc = index(cfg).services.get(st.route.service) if st.route.service else None
    return priority(st.severity, svc.criticality if svc else "medium")


def event(
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


def snapshot(st: GroupState, cfg: Config, now: datetime, out: Outcome) -> None:
    if st.incident_id is None or st.status is None or st.opened_at is None:
        return
    st.version += 1
    out.effects.append(Incident(
        event_id=f"{st.incident_id}@{st.version}", produced_at=now,
        incident_id=st.incident_id, group_key=st.group_key[:1024], version=st.version,
        status=st.status, title=st.title[:8192], severity=st.severity,
        priority=group_priority(st, cfg), service=st.route.service, team=st.route.team,
        labels=st.labels,
        alerts=[AlertRef(fingerprint=m.fingerprint, rule=m.rule, status=m.status,
                         severity=m.severity, labels=m.labels, value=m.value,
                         threshold=m.threshold, first_seen=m.first_seen,
                         last_seen=m.last_seen, repeats=m.repeats)
                for m in list(st.members.values())[:10_000]],
        opened_at=st.opened_at, acknowledged_at=st.acknowledged_at,
        resolved_at=st.resolved_at, assignee=st.assignee,
        escalation_policy=st.route.policy, escalation_level=max(st.level, 0),
        snoozed_until=st.snoozed_until, flapping=st.flapping,
        notified_targets=[f"{c}:{t}" for c, t in st.notified][:1000],
    ))  # fmt: skip


def group_id(group_key: str) -> str:
    """Short stable id of a group: the Kafka key of its state, inside every incident id."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:12]


def group_of(incident_id: str) -> str | None:
    """The group id an incident id belongs to (commands carry only the incident id)."""
    parts = incident_id.split("-")
    return parts[1] if len(parts) == 3 and parts[0] == "inc" else None
