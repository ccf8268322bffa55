"""What monitoring sources send: metric samples and log records."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import Event
from schemas.types import (
    Labels,
    Measurement,
    MetricName,
    Name,
    NonNegativeMeasurement,
    Text,
    Timestamp,
)


class MetricSample(Event):
    """One observation of one series at one instant (event time)."""

    name: MetricName
    value: Measurement
    time: Timestamp
    labels: Labels = Field(default_factory=dict)
    kind: Literal["gauge", "counter"] = "gauge"
    unit: Name | None = None

    def series_key(self) -> str:
        """Stable key of the series: the Kafka key of the `metrics` topic."""
        return series_key(self.name, self.labels)


def series_key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


class LogRecord(Event):
    """One log line, parsed enough to be aggregated (HTTP status, duration)."""

    time: Timestamp
    message: Text = ""
    level: Literal["debug", "info", "warning", "error", "critical"] | None = None
    labels: Labels = Field(default_factory=dict)
    http_status: int | None = Field(default=None, ge=100, le=599)
    duration_ms: NonNegativeMeasurement | None = None
    source: Name = "unknown"
