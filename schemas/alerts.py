"""Alert transitions: what processors and intakes emit on the `alerts` topic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import Event
from schemas.types import (
    MAX_ANNOTATIONS,
    Fingerprint,
    FiniteFloat,
    Labels,
    Name,
    ShortText,
    Text,
    Timestamp,
)

Severity = Literal["critical", "error", "warning", "info"]
AlertStatus = Literal["pending", "firing", "resolved"]
AlertSource = Literal[
    "rule",
    "anomaly",
    "alertmanager",
    "pagerduty",
    "api",
    "grafana",
    "zabbix",
    "checkmk",
    "cloudwatch",
    "heartbeat",
]


class AnomalyDetail(BaseModel):
    """Why an anomaly detector fired: the score and what it expected instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    expected: FiniteFloat | None = None
    lower: FiniteFloat | None = None
    upper: FiniteFloat | None = None
    detector: Name = "default"
    # how often a point this rare comes on this series, in words an on-call engineer counts
    rarity: ShortText | None = None
    # the series' last hours, oldest first: one value per slot of `slot_s` seconds (the
    # slot's lowest or highest, whichever strays further), None where no sample came
    recent: list[FiniteFloat | None] = Field(default_factory=list, max_length=144)
    slot_s: int = Field(default=600, ge=1, le=86_400)
    # the series whose detector decided, when the rule scores each series of a group on
    # its own (a window rule scores the group's aggregate: None)
    series: ShortText | None = None

    def expectation(self) -> str:
        """e.g. "expected 41.2, usual 30.1 to 52.3"."""
        if self.expected is None:
            return ""
        out = f"expected {self.expected:.4g}"
        if self.lower is not None and self.upper is not None:
            out += f", usual {self.lower:.4g} to {self.upper:.4g}"
        return out

    def sparkline(self) -> str:
        """The last hours in block characters, a space where no sample came."""
        seen = [v for v in self.recent if v is not None]
        if not seen:
            return ""
        lo, hi = min(seen), max(seen)
        span = hi - lo
        top = len(_BARS) - 1
        return "".join(
            " " if v is None else _BARS[round((v - lo) / span * top) if span > 0 else 0]
            for v in self.recent
        )

    def hours(self) -> str:
        """How long the sparkline covers, e.g. "last 4 h"."""
        return f"last {len(self.recent) * self.slot_s / 3600:.3g} h"


_BARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


class Alert(Event):
    """One state change of one alert (never one per evaluation).

    ``fingerprint`` identifies the alert across its transitions: rule plus
    group labels for tocsin's own rules, Alertmanager's fingerprint for alerts
    arriving through the webhook intake.

    ``ends_at`` on a firing alert is when it resolves by itself unless a newer
    transition arrives first (Alertmanager's ``endsAt``, as Prometheus sends it);
    the expiry worker writes that resolution.

    ``starts_at`` follows Prometheus (``startsAt``): when the alert started firing, on
    its firing and its resolution; on a pending, when the condition began to hold.
    ``pending_since`` is when the condition began to hold before the alert fired (rules
    with ``for:``), on all three.
    """

    fingerprint: Fingerprint
    status: AlertStatus
    rule: Name
    source: AlertSource = "rule"
    severity: Severity = "warning"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[Name, Text] = Field(default_factory=dict, max_length=MAX_ANNOTATIONS)
    summary: Text = ""
    runbook_url: ShortText | None = None
    value: FiniteFloat | None = None
    threshold: FiniteFloat | None = None
    starts_at: Timestamp
    pending_since: Timestamp | None = None
    ends_at: Timestamp | None = None
    window_start: Timestamp | None = None
    window_end: Timestamp | None = None
    # a rule with `early: true` fired before its window ended, on part of the window
    early: bool = False
    anomaly: AnomalyDetail | None = None

    @model_validator(mode="after")
    def _resolved_has_end(self) -> Alert:
        if self.status == "resolved" and self.ends_at is None:
            raise ValueError("ends_at: a resolved alert must say when it ended")
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at: must not be before starts_at")
        return self
