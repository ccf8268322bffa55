"""Heartbeats (dead man's switches): something that must check in at least once per
interval, or an incident opens.

A heartbeat is pinged over HTTP (``/v1/heartbeats/<name>``: cron jobs, backups) or by
any alert whose labels match its ``alert`` matchers (Prometheus' constant "Watchdog"
alert, through any alert intake). It is armed by its first ping: one that never
pinged is not missing (a job not deployed yet), one that stops is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import Severity
from schemas.commands import Matcher
from schemas.types import Duration, Labels, ShortText

HEARTBEAT_NAME = r"^[a-z0-9][a-z0-9_.\-]*$"
HeartbeatName = Annotated[str, Field(min_length=1, max_length=64, pattern=HEARTBEAT_NAME)]
_NAME = re.compile(HEARTBEAT_NAME)
# what the alert of a missed heartbeat is known by: a heartbeat's labels cannot change it
RESERVED_LABELS = frozenset({"alertname", "heartbeat"})


def valid_name(name: str) -> bool:
    return len(name) <= 64 and _NAME.fullmatch(name) is not None


class Heartbeat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: HeartbeatName
    interval: Duration = Field(ge=timedelta(seconds=1), le=timedelta(days=31))
    grace: Duration = Field(default=timedelta(0), ge=timedelta(0), le=timedelta(days=7))
    severity: Severity = "critical"
    summary: ShortText = ""
    labels: Labels = Field(default_factory=dict)
    alert: list[Matcher] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _checks(self) -> Heartbeat:
        taken = sorted(RESERVED_LABELS & set(self.labels))
        if taken:
            raise ValueError(f"labels: {', '.join(taken)} is set by tocsin (alertname and "
                             "heartbeat are the heartbeat's name)")  # fmt: skip
        for i, m in enumerate(self.alert):
            if m.op in ("=~", "!~"):
                try:
                    re.compile(m.value)
                except re.error as exc:
                    raise ValueError(f"alert[{i}]: bad regex {m.value!r}: {exc}") from exc
        if self.alert and all(m.op in ("!=", "!~") for m in self.alert):
            raise ValueError("alert: needs at least one = or =~ matcher, or every other "
                             "alert would ping the heartbeat")  # fmt: skip
        return self

    @property
    def allowance(self) -> timedelta:
        """How long after a ping the next one may come before the heartbeat is missed."""
        return self.interval + self.grace
