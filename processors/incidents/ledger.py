"""What the core emits: ledger entries, snapshots, ids and priority.

Every id is derived from the group's state, never from a clock or a random
source, so a decision replayed after a crash re-emits byte-identical ids that
consumers recognise (IncidentEvent: incident:seq; Incident: incident@version).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from processors.incidents import storm
from processors.incidents.index import index
from processors.incidents.state import GroupState
from schemas.alerts import AnomalyDetail, Severity
from schemas.config.models import Config
from schemas.incidents import (
    AlertRef,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    Priority,
    StormDigest,
)
from schemas.notifications import Notification

Effect = IncidentEvent | Notification | Incident
MAX_SHORT = 1024  # ShortText: the bound a config-sourced target might reach

M = TypeVar("M", bound=BaseModel)


def build(model: type[M], trusted: bool, **fields: Any) -> M:
    """An effect from values the core controls, without pydantic re-validating them.

    Every field comes from a validated alert or command, the validated config, or the
    core itself (ids, counters, `now`), already cut to the schema's length limits, so
    validation would accept it unchanged: no whitespace to strip (Name values are
    already stripped where they were validated), no defaults beyond the schema's own.
    `trusted` carries the cheap checks for what is not implied by where a value comes
    from (an aware `now`, a config target near its bound); when one fails the model is
    validated as before and fails the same way. tests/unit/incidents/test_effects.py
    proves the encoded bytes equal the validated path's over hypothesis-driven flows.
    """
    if not trusted:
        return model(**fields)
    return adopt(model, fields)


def adopt(model: type[M], fields: dict[str, Any]) -> M:
    """`model` holding `fields` (values it would validate unchanged, see `build`) as its
    own `__dict__`: no copy when every field is there in declaration order."""
    known = _FIELDS.get(model)
    if known is None:
        known = _FIELDS[model] = (tuple(model.model_fields), frozenset(model.model_fields))
    names, every = known
    if tuple(fields) != names:  # (the callers give every field, in declaration order)
        if fields.keys() != every:
            return model.model_construct(**fields)  # defaults to fill: pydantic's own way
        fields = {n: fields[n] for n in names}
    # what model_construct does, minus its per-field loop over aliases and defaults
    # (pure Python, slower than validating)
    obj = model.__new__(model)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", set(every))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


_set = object.__setattr__
_FIELDS: dict[type[BaseModel], tuple[tuple[str, ...], frozenset[str]]] = {}


def aware(*instants: datetime | None) -> bool:
    # a list, not all() over a generator: this runs for every effect
    return None not in [t.utcoffset() for t in instants if t is not None]


SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
_CRITICALITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass
class Outcome:
    """The effects of one decision, in order; `suppressed` says why nothing paged,
    `refused` why a command was not applied."""

    effects: list[Effect] = field(default_factory=list)
    suppressed: str | None = None
    refused: str | None = None

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
    if st.priority is not None:
        return cast(Priority, st.priority)
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
    ok = aware(now) and len(details) <= 64
    out.effects.append(build(
        IncidentEvent, ok, schema_version=1, event_id=f"{st.incident_id}:{st.seq}",
        tenant=st.tenant, produced_at=now, incident_id=st.incident_id,
        seq=st.seq, kind=kind, at=now, actor=actor, message=message[:8192], details=details,
    ))  # fmt: skip


def snapshot(st: GroupState, cfg: Config, now: datetime, out: Outcome) -> None:
    if st.incident_id is None or st.status is None or st.opened_at is None:
        return
    st.version += 1
    members = list(st.members.values())[: storm.MAX_TRACKED]
    targets = [f"{c}:{t}" for c, t in st.notified][:1000]
    ok = (aware(now, st.opened_at, st.acknowledged_at, st.resolved_at, st.snoozed_until)
          and (not targets or max(map(len, targets)) <= MAX_SHORT)
          and aware(*[t for m in members for t in (m.first_seen, m.last_seen)]))  # fmt: skip
    alerts = [build(AlertRef, ok, fingerprint=m.fingerprint, rule=m.rule, status=m.status,
                    severity=m.severity, labels=m.labels, value=m.value,
                    threshold=m.threshold, anomaly=anomaly_detail(m.anomaly),
                    first_seen=m.first_seen,
                    last_seen=m.last_seen, repeats=m.repeats)
              for m in members]  # fmt: skip
    out.effects.append(build(
        Incident, ok, schema_version=1, event_id=f"{st.incident_id}@{st.version}",
        tenant=st.tenant, produced_at=now,
        incident_id=st.incident_id, group_key=st.group_key[:1024], version=st.version,
        status=st.status, title=st.title[:8192], severity=st.severity,
        priority=group_priority(st, cfg), service=st.route.service, team=st.route.team,
        labels=st.labels, alerts=alerts,
        opened_at=st.opened_at, acknowledged_at=st.acknowledged_at,
        resolved_at=st.resolved_at, assignee=st.assignee,
        escalation_policy=st.route.policy, escalation_level=max(st.level, 0),
        snoozed_until=st.snoozed_until, flapping=st.flapping,
        notified_targets=targets, storm=digest(st),
    ))  # fmt: skip


def anomaly_detail(d: dict[str, Any] | None) -> AnomalyDetail | None:
    """A member's anomaly detail as the schema's model (validated: it is small)."""
    return AnomalyDetail.model_validate(d) if d is not None else None


def digest(st: GroupState) -> StormDigest | None:
    """The group's storm digest as the schema's model (validated: it is small)."""
    return StormDigest.model_validate(storm.view(st.storm)) if st.storm is not None else None


def group_id(group_key: str) -> str:
    """Short stable id of a group: the Kafka key of its state, inside every incident id."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:12]


def group_of(incident_id: str) -> str | None:
    """The group id an incident id belongs to (commands carry only the incident id)."""
    parts = incident_id.split("-")
    return parts[1] if len(parts) == 3 and parts[0] == "inc" else None
