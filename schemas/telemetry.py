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
    """``name{k=v,...}``, labels sorted: distinct label sets give distinct keys.

    Label names cannot hold ``,`` or ``=``, so the plain form is unambiguous while no
    value holds a ``,``; a label set with a value holding ``,`` or ``"`` is written as
    Prometheus writes it instead, every value quoted with ``\\``, ``"`` and newline
    escaped (the plain form never holds a ``"``, so the two cannot meet). Keys of
    ordinary series stay as they were, and with them the partition of every series."""
    if not labels:
        return name
    keys = sorted(labels)
    if any("," in v or '"' in v for v in labels.values()):
        inner = ",".join(f'{k}="{_escaped(labels[k])}"' for k in keys)
    else:
        inner = ",".join(f"{k}={labels[k]}" for k in keys)
    return f"{name}{{{inner}}}"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class LogRecord(Event):
    """One log line, parsed enough to be aggregated (HTTP status, duration)."""

    time: Timestamp
    message: Text = ""
    level: Literal["debug", "info", "warning", "error", "critical"] | None = None
    labels: Labels = Field(default_factory=dict)
    http_status: int | None = Field(default=None, ge=100, le=599)
    duration_ms: NonNegativeMeasurement | None = None
    source: Name = "unknown"
