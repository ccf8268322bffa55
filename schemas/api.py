"""The REST API's requests and answers (/api/v1): validated on the way in, and the source
of the OpenAPI document's schemas."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import AnomalyDetail
from schemas.commands import Matcher, Priority, Weekly
from schemas.incidents import IncidentStatus
from schemas.types import Name, Text, Timestamp

SortKey = Literal["opened_at", "-opened_at", "updated_at", "-updated_at", "priority",
                  "-priority"]  # fmt: skip
MAX_PAGE = 500


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncidentQuery(_In):
    """Filters of the incident list: every given one must hold."""

    status: list[IncidentStatus] = Field(default_factory=list)
    priority: list[Priority] = Field(default_factory=list)
    service: list[Name] = Field(default_factory=list)
    team: list[Name] = Field(default_factory=list)
    since: Timestamp | None = Field(default=None, description="opened at or after")
    until: Timestamp | None = Field(default=None, description="opened before")
    q: str = Field(default="", max_length=256, description="free text in title and labels")
    sort: SortKey = "-opened_at"
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=2048)

    @model_validator(mode="after")
    def _range(self) -> IncidentQuery:
        if self.since and self.until and self.until <= self.since:
            raise ValueError("until: must be after since")
        return self


class NoteBody(_In):
    text: Text = Field(min_length=1)


class ReassignBody(_In):
    assignee: Name


class SnoozeBody(_In):
    duration: timedelta = Field(gt=timedelta(0), le=timedelta(days=30),
                                description="ISO 8601 (PT30M) or seconds")  # fmt: skip


class PriorityBody(_In):
    priority: Priority


class EmptyBody(_In):
    """Actions that take no argument accept an empty body or {}."""


class SilenceBody(_In):
    """Alertmanager-style matchers; either `ends_at` or `duration` (from `starts_at`, which
    defaults to now). With `weekly` it is a recurring maintenance window: it mutes only
    inside the weekly windows between `starts_at` and `ends_at`."""

    matchers: list[Matcher] = Field(min_length=1, max_length=32)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    duration: timedelta | None = Field(default=None, gt=timedelta(0), le=timedelta(days=3660))
    comment: Text = ""
    weekly: Weekly | None = None

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("ends_at: give either ends_at or duration")
        return self


class OverrideBody(_In):
    schedule: Name
    user: Name
    start: Timestamp | None = None
    end: Timestamp


class ReportQuery(_In):
    since: timedelta | Timestamp = Field(
        default=timedelta(days=30), description="a duration back from now, or an instant"
    )
    until: Timestamp | None = None
    group_by: Literal["service", "team", "priority"] = "service"


class Accepted(BaseModel):
    """A command written to Kafka (acknowledged); the agents apply it shortly."""

    command_id: str
    incident_id: str | None = None
    silence_id: str | None = None
    status: Literal["accepted"] = "accepted"


class Problem(BaseModel):
    error: str
    field: str | None = None


class IncidentSummary(BaseModel):
    incident_id: str
    status: IncidentStatus
    title: str
    severity: str
    priority: Priority
    service: str | None
    team: str | None
    labels: dict[str, str]
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    assignee: str | None
    escalation_level: int
    snoozed_until: datetime | None
    flapping: bool
    alert_count: int
    version: int


class IncidentPage(BaseModel):
    items: list[IncidentSummary]
    next_cursor: str | None


class Member(BaseModel):
    fingerprint: str
    rule: str
    status: str
    severity: str
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    first_seen: datetime
    last_seen: datetime
    repeats: int
    anomaly: AnomalyDetail | None = None


class Paged(BaseModel):
    notification_id: str
    kind: str
    channel: str
    target: str
    escalation_level: int
    at: datetime
    outcome: str | None = Field(description="the last delivery attempt's outcome, if told")
    attempts: int


class TimelineEntry(BaseModel):
    seq: int
    kind: str
    at: datetime
    actor: str
    message: str
    details: dict[str, Any]


class IncidentDetail(IncidentSummary):
    group_key: str
    escalation_policy: str | None
    notified_targets: list[str]
    storm: dict[str, Any] | None
    members: list[Member]
    notifications: list[Paged]
    timeline: list[TimelineEntry]


class Silence(BaseModel):
    silence_id: str
    state: Literal["active", "pending", "expired"]
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str
    weekly: Weekly | None
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None


class SilenceList(BaseModel):
    items: list[Silence]


class Shift(BaseModel):
    user: str | None
    name: str | None
    since: datetime | None = None
    until: datetime | None = None


class OnCall(BaseModel):
    schedule: str
    timezone: str
    now: Shift
    next: list[Shift]
    overrides: list[dict[str, Any]]


class OnCallList(BaseModel):
    at: datetime
    items: list[OnCall]


class Stats(BaseModel):
    key: str
    incidents: int
    acknowledged: int
    resolved: int
    mtta_s: float | None
    mttr_s: float | None
    mttr_p50_s: float | None
    mttr_p90_s: float | None
    mttr_p99_s: float | None
    ack_sla_breaches: int


class Report(BaseModel):
    since: datetime
    until: datetime
    group_by: str
    total: Stats
    groups: list[Stats]
    ack_sla_s: dict[str, float]
    top_alerts: list[dict[str, Any]]
    noisiest_rules: list[dict[str, Any]]


Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class SlaQuery(_In):
    """Months ``from`` .. ``to`` (inclusive, ``YYYY-MM``, UTC); default: the last three.
    ``tenants=all``: every tenant (the provider role only)."""

    from_: Month | None = Field(default=None, alias="from")
    to: Month | None = None
    tenants: Literal["all"] | None = None


class SlaMonth(BaseModel):
    """One tenant's month: its incidents (by when they opened), how fast they were
    acknowledged and resolved, and how many missed the tenant's acknowledgement SLA."""

    tenant: str
    month: str
    incidents: int
    acknowledged: int
    resolved: int
    mtta_s: float | None
    mttr_s: float | None
    mttr_p90_s: float | None
    ack_sla_breaches: int
    ack_sla_met_pct: float | None


class SlaReport(BaseModel):
    since: datetime
    until: datetime
    months: list[SlaMonth]
    ack_sla_s: dict[str, dict[str, float]] = Field(description="each tenant's SLA by priority")
