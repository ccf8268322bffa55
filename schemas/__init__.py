"""Contracts: event models, codecs, exported JSON Schemas. Imports nothing of tocsin's."""

from schemas.alerts import Alert, AnomalyDetail
from schemas.codec import decode, encode
from schemas.commands import Command, Matcher, SilenceSpec
from schemas.deadletter import DeadLetter
from schemas.envelope import Event
from schemas.errors import BrokerError, ConfigError, DecodeError, TocsinError
from schemas.incidents import AlertRef, Incident, IncidentEvent
from schemas.notifications import DeliveryReceipt, Notification
from schemas.telemetry import LogRecord, MetricSample, series_key

__all__ = [
    "Alert",
    "AlertRef",
    "AnomalyDetail",
    "BrokerError",
    "Command",
    "ConfigError",
    "DeadLetter",
    "DecodeError",
    "DeliveryReceipt",
    "Event",
    "Incident",
    "IncidentEvent",
    "LogRecord",
    "Matcher",
    "MetricSample",
    "Notification",
    "SilenceSpec",
    "TocsinError",
    "decode",
    "encode",
    "series_key",
]
