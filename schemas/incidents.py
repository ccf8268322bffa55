"""Incidents (compacted snapshots) and their timeline entries (the ledger)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import AlertStatus, AnomalyDetail, Severity
from schemas.commands import Priority as Priority
from schemas.envelope import Event
from schemas.types import (
    Fingerprint,
    FiniteFloat,
    LabelKey,
    Labels,
    Name,
    ShortText,
    Text,
    Timestamp,
)

IncidentStatus = Literal["triggered", "acknowledged", "resolved"]

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
    "storm",
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
    anomaly: AnomalyDetail | None = None
    first_seen: Timestamp
    last_seen: Timestamp
    repeats: int = Field(default=0, ge=0)


class LabelTally(BaseModel):
    """How many summarised alerts carried each value of one label (the first values seen,
    a bounded number of them); `other` counts those with any other value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    values: dict[ShortText, int] = Field(default_factory=dict, max_length=64)
    other: int = Field(default=0, ge=0)


class StormSample(BaseModel):
    """One summarised alert, as a bounded example of the storm."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: Fingerprint
    status: AlertStatus
    labels: Labels = Field(default_factory=dict)


class StormDigest(BaseModel):
    """The alerts of an incident beyond its tracked members, summarised in bounded size.

    `summarised` is how many distinct summarised alerts fired (estimated, about 1%
    standard error); `firing` how many of them fire now (estimated); `resolved` counts
    their resolutions; `events` counts every summarised alert event, repeats included.
    See docs/incidents.md (alert storms) for the semantics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    summarised: int = Field(ge=0)
    firing: int = Field(ge=0)
    resolved: int = Field(ge=0)
    repeats: int = Field(default=0, ge=0)
    suppressed: int = Field(default=0, ge=0)
    events: int = Field(default=0, ge=0)
    first_seen: Timestamp
    last_seen: Timestamp
    by_label: dict[LabelKey, LabelTally] = Field(default_factory=dict, max_length=64)
    sample: list[StormSample] = Field(default_factory=list, max_length=64)

    def line(self) -> str:
        """The digest in one line, as a page or a ledger entry says it."""
        return (f"storm: {self.summarised:,} more alerts summarised ({self.firing:,} "
                f"firing, {self.resolved:,} resolved; {self.events:,} alert events)")  # fmt: skip


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
    # the alerts beyond `alerts` (an alert storm), or None when every alert is listed
    storm: StormDigest | None = None


class IncidentEvent(Event):
    """One entry of an incident's timeline: who did what, when."""

    incident_id: Name
    seq: int = Field(ge=0)
    kind: IncidentEventKind
    at: Timestamp
    actor: Name = "tocsin"
    message: Text = ""
    details: dict[Name, Any] = Field(default_factory=dict, max_length=64)
