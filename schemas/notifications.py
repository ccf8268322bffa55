"""The notification outbox and the delivery receipts that answer it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.alerts import AnomalyDetail, Severity
from schemas.envelope import Event
from schemas.incidents import IncidentStatus, Priority, StormDigest
from schemas.types import FiniteFloat, Labels, Name, ShortText, Text, Timestamp

NotificationKind = Literal["trigger", "update", "resolve", "escalate", "reminder", "flapping"]
Channel = Literal["slack", "slack_dm", "pagerduty", "ilert", "webhook"]
DeliveryOutcome = Literal["delivered", "retrying", "failed"]


class Notification(Event):
    """A request to tell one target about one incident.

    ``notification_id`` is deterministic (incident, target, step) so that a
    re-emitted request after a crash is recognised and delivered once.
    """

    notification_id: ShortText
    incident_id: Name
    kind: NotificationKind
    channel: Channel
    target: ShortText
    title: Text
    status: IncidentStatus
    severity: Severity
    priority: Priority
    service: Name | None = None
    team: Name | None = None
    summary: Text = ""
    labels: Labels = Field(default_factory=dict)
    value: FiniteFloat | None = None
    threshold: FiniteFloat | None = None
    anomaly_score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    # the lead alert's anomaly: expected value and band, rarity in words, the last hours
    anomaly: AnomalyDetail | None = None
    runbook_url: ShortText | None = None
    assignee: Name | None = None
    escalation_level: int = Field(default=0, ge=0)
    opened_at: Timestamp
    at: Timestamp
    # the incident's alerts beyond its tracked members (an alert storm), if any
    storm: StormDigest | None = None


class DeliveryReceipt(Event):
    """One delivery attempt and its outcome, for the incident's timeline."""

    notification_id: ShortText
    incident_id: Name
    channel: Channel
    target: ShortText
    attempt: int = Field(ge=1)
    outcome: DeliveryOutcome
    status_code: int | None = None
    error: Text = ""
    external_ref: ShortText | None = None
    latency_ms: FiniteFloat = Field(ge=0)
    at: Timestamp
