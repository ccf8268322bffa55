"""Every event model by name: the source of the exported JSON Schemas."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.commands import Command
from schemas.deadletter import DeadLetter
from schemas.heartbeats import HeartbeatPing
from schemas.incidents import Incident, IncidentEvent
from schemas.notifications import DeliveryReceipt, Notification
from schemas.telemetry import LogRecord, MetricSample

EVENT_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        MetricSample,
        LogRecord,
        Alert,
        Incident,
        IncidentEvent,
        Command,
        Notification,
        DeliveryReceipt,
        DeadLetter,
        HeartbeatPing,
    )
}
