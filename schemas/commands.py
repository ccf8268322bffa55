"""Commands from responders (Slack, CLI, API) to the incident agents."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import Event
from schemas.types import LabelKey, Name, ShortText, Text, Timestamp

CommandAction = Literal[
    "ack", "resolve", "escalate", "snooze", "assign", "note", "silence", "expire_silence",
]  # fmt: skip


class Matcher(BaseModel):
    """A label matcher: `=`, `!=`, `=~` (full-match regex) or `!~`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: LabelKey
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: ShortText


class SilenceSpec(BaseModel):
    """A silence: alerts whose labels match every matcher are muted between starts and ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matchers: list[Matcher] = Field(min_length=1, max_length=32)
    starts_at: Timestamp
    ends_at: Timestamp
    author: Name
    comment: Text = ""

    @model_validator(mode="after")
    def _ordered(self) -> SilenceSpec:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: a silence must end after it starts")
        return self


class Command(Event):
    """One action a responder takes. `incident_id` is empty only for the actions that are
    about no incident: `silence` and `expire_silence` (of `silence_id`, the event id of the
    command that created it)."""

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
        return self


_NO_INCIDENT = frozenset({"silence", "expire_silence"})
