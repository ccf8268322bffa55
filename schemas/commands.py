"""Commands from responders (Slack, CLI, API) to the incident agents."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.envelope import Event
from schemas.status_changes import StatusChange
from schemas.types import LabelKey, Name, ShortText, Text, Timestamp

CommandAction = Literal[
    "ack", "resolve", "escalate", "snooze", "assign", "note", "priority", "silence",
    "expire_silence", "override", "status",
]  # fmt: skip
Priority = Literal["P1", "P2", "P3", "P4", "P5"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Matcher(BaseModel):
    """A label matcher: `=`, `!=`, `=~` (full-match regex) or `!~`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: LabelKey
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: ShortText


class Weekly(BaseModel):
    """A window that recurs every week: on `days`, from `start` (wall clock in `timezone`)
    for `duration`. A window may run past midnight into the next day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: time
    duration: timedelta = Field(gt=timedelta(0), le=timedelta(days=7))
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    def describe(self) -> str:
        """e.g. "sat,sun 02:00 for 2:00:00 Europe/Berlin"."""
        return f"{','.join(self.days)} {self.start:%H:%M} for {self.duration} {self.timezone}"

    def covers(self, at: datetime) -> bool:
        """Whether `at` (aware) falls inside one of the weekly windows."""
        tz = ZoneInfo(self.timezone)
        local = at.astimezone(tz)
        # a window that began up to `duration` ago may still be open: look back enough days
        back = self.duration.days + 1
        for ago in range(back + 1):
            day = local.date() - timedelta(days=ago)
            if WEEKDAYS[day.weekday()] not in self.days:
                continue
            begins = datetime.combine(day, self.start, tz)
            if begins <= at < begins + self.duration:
                return True
        return False


class SilenceSpec(BaseModel):
    """A silence: alerts whose labels match every matcher are muted between starts and ends
    (with `weekly`: only inside its weekly windows, a recurring maintenance window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matchers: list[Matcher] = Field(min_length=1, max_length=32)
    starts_at: Timestamp
    ends_at: Timestamp
    author: Name
    comment: Text = ""
    weekly: Weekly | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SilenceSpec:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: a silence must end after it starts")
        for i, m in enumerate(self.matchers):
            if m.op in ("=~", "!~"):
                # checked here: every worker that applies the silence compiles it
                try:
                    re.compile(m.value)
                except re.error as exc:
                    raise ValueError(f"matchers: [{i}] {m.value!r} is not a regular "
                                     f"expression: {exc}") from None  # fmt: skip
        return self

    def active(self, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        return self.weekly is None or self.weekly.covers(at)


class OnCallOverride(BaseModel):
    """Somebody takes a schedule's shift between start and end, made at run time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: Name
    user: Name
    start: Timestamp
    end: Timestamp
    author: Name

    @model_validator(mode="after")
    def _ordered(self) -> OnCallOverride:
        if self.end <= self.start:
            raise ValueError("end: an override must end after it starts")
        return self


class Command(Event):
    """One action a responder takes. `incident_id` is empty only for the actions that are
    about no incident: `silence`, `expire_silence` (of `silence_id`, the event id of the
    command that created it), `override` (an on-call override) and `status` (a status
    page change, which names its incident itself; the projector applies it, the agents
    pass it by)."""

    action: CommandAction
    incident_id: Name | None = None
    actor: Name
    at: Timestamp
    origin: Literal["slack", "cli", "api", "config"] = "api"
    duration: timedelta | None = Field(default=None, gt=timedelta(0), le=timedelta(days=30))
    assignee: Name | None = None
    text: Text = ""
    silence: SilenceSpec | None = None
    silence_id: Name | None = None
    priority: Priority | None = None
    override: OnCallOverride | None = None
    status: StatusChange | None = None

    @model_validator(mode="after")
    def _arguments_match_action(self) -> Command:
        if self.action not in _NO_INCIDENT and not self.incident_id:
            raise ValueError(f"incident_id: required for action {self.action!r}")
        if self.action == "snooze" and self.duration is None:
            raise ValueError("duration: required for action 'snooze'")
        if self.action == "assign" and not self.assignee:
            raise ValueError("assignee: required for action 'assign'")
        if self.action == "note" and not self.text.strip():
            raise ValueError("text: required for action 'note'")
        if self.action == "silence" and self.silence is None:
            raise ValueError("silence: required for action 'silence'")
        if self.action == "expire_silence" and not self.silence_id:
            raise ValueError("silence_id: required for action 'expire_silence'")
        if self.action == "priority" and self.priority is None:
            raise ValueError("priority: required for action 'priority'")
        if self.action == "override" and self.override is None:
            raise ValueError("override: required for action 'override'")
        if self.action == "status" and self.status is None:
            raise ValueError("status: required for action 'status'")
        return self


_NO_INCIDENT = frozenset({"silence", "expire_silence", "override", "status"})
