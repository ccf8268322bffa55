"""Incidents (compacted snapshots) and their timeline entries (the ledger)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import AlertStatus, Severity
from schemas.envelope import Event
from schemas.types import Fingerprint, FiniteFloat, Labels, Name, ShortText, Text, Timestamp

IncidentStatus = Literal["triggered", "acknowledged", "resolved"]
Priority = Literal["P1", "P2", "P3", "P4", "P5"]

IncidentEventKind = Literal[
    "opened",
    "alert_added",
    "alert_repeated",
    "alert_resolved",
    "acknowledged",
    "unacknowledged",
    "snoozed",
    "snooze_expired",
    "assigned",
    "escalated",
    "notified",
    "delivery",
    "note",
    "silenced",
    "inhibited",
    "flapping",
    "priority_changed",
    "resolved",
    "reopened",
]


class AlertRef(BaseModel):
    """An alert as a member of an incident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: Fingerprint
    rule: Name
    status: AlertStatus
    severity: Severity
    labels: Labels = Field(default_factory=dict)
    value: FiniteFloat | None = None
    threshold: FiniteFloat | None = None
    first_seen: Timestamp
    last_seen: Timestamp
    repeats: int = Field(default=0, ge=0)


class Incident(Event):
    """The latest state of one incident: value of the compacted `incidents` topic."""

    incident_id: Name
    group_key: ShortText
    version: int = Field(ge=0)
    status: IncidentStatus
    title: Text
    severity: Severity
    priority: Priority
    service: Name | None = None
    team: Name | None = None
    labels: Labels = Field(default_factory=dict)
    alerts: list[AlertRef] = Field(default_factory=list, max_length=10_000)
    opened_at: Timestamp
    acknowledged_at: Timestamp | None = None
    resolved_at: Timestamp | None = None
    assignee: Name | None = None
    escalation_policy: Name | None = None
    escalation_level: int = Field(default=0, ge=0)
    snoozed_until: Timestamp | None = None
    flapping: bool = False
    notified_targets: list[ShortText] = Field(default_factory=list, max_length=1000)


class IncidentEvent(Event):
    """One entry of an incident's timeline: who did what, when."""

    incident_id: Name
    seq: int = Field(ge=0)
    kind: IncidentEventKind
    at: Timestamp
    actor: Name = "tocsin"
    message: Text = ""
    details: dict[Name, Any] = Field(default_factory=dict, max_length=64)
