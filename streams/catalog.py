"""Every topic tocsin uses, declared once.

Keys decide ownership: metrics by series, alerts by fingerprint, incident
traffic by group key, so exactly one worker owns each piece of state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from schemas import (
    Alert,
    Command,
    DeadLetter,
    DeliveryReceipt,
    Incident,
    IncidentEvent,
    LogRecord,
    MetricSample,
    Notification,
)
from schemas.heartbeats import HeartbeatPing
from streams.settings import KafkaSettings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    value: type[BaseModel] | None
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
    partitions: int | None = None  # None: the settings' default
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        conf = {"cleanup.policy": self.cleanup_policy, **self.extra}
        if self.cleanup_policy == "delete":
            conf["retention.ms"] = str(self.retention_ms)
        return conf


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("metrics", "series key (name{labels})", MetricSample, retention_ms=2 * DAY_MS),
    TopicSpec("logs", "source or service", LogRecord, retention_ms=2 * DAY_MS),
    TopicSpec("alerts", "alert fingerprint", Alert, retention_ms=30 * DAY_MS),
    TopicSpec("commands", "group key of the incident", Command, retention_ms=30 * DAY_MS),
    TopicSpec(
        "incidents",
        "incident id",
        Incident,
        cleanup_policy="compact",
        extra={"min.compaction.lag.ms": "60000"},
    ),
    TopicSpec("incident-events", "incident id", IncidentEvent, retention_ms=365 * DAY_MS),
    TopicSpec("notifications", "incident id", Notification, retention_ms=30 * DAY_MS),
    TopicSpec("receipts", "incident id", DeliveryReceipt, retention_ms=30 * DAY_MS),
    TopicSpec("deadletter", "original key", DeadLetter, retention_ms=30 * DAY_MS),
    TopicSpec("late", "series key", MetricSample, retention_ms=7 * DAY_MS),
    TopicSpec(
        "incident-work",
        "group id: alerts, commands and timer ticks re-keyed to the incident group",
        None,
        retention_ms=7 * DAY_MS,
    ),
    TopicSpec(
        "heartbeats",
        "<tenant>/<name>: heartbeat pings and the agents' timer ticks for it",
        HeartbeatPing,
        retention_ms=7 * DAY_MS,
    ),
    TopicSpec(
        "suppressions",
        "sil:<command id> -> silence, src:<fingerprint> -> labels of a firing inhibition source",
        None,
        cleanup_policy="compact",
    ),
    TopicSpec(
        # partitioned like `notifications`: partition p holds the state of outbox
        # partition p, loaded by whichever notifier replica is assigned it
        "notifier-partition-state",
        "done:<notification id> -> delivery time, msg:<incident>|<target> -> channel/ts;"
        " written to the partition of the notification's outbox partition",
        None,
        cleanup_policy="compact",
    ),
    TopicSpec(
        "processor-state",
        "partition/series: window and detector checkpoints",
        None,
        cleanup_policy="compact",
    ),
)


@dataclass(frozen=True, slots=True)
class ResolvedTopic:
    spec: TopicSpec
    name: str
    partitions: int
    replication_factor: int
    min_insync: int

    def configs(self) -> dict[str, str]:
        """The topic's configs as created and as `tocsin topics check` expects them."""
        return self.spec.configs() | {"min.insync.replicas": str(self.min_insync)}


class Catalog:
    """The topic catalog resolved against settings (prefix, partitions, replication)."""

    def __init__(self, settings: KafkaSettings, specs: tuple[TopicSpec, ...] = TOPICS) -> None:
        self._settings = settings
        self._by_name = {s.name: s for s in specs}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.resolved())

    def resolved(self) -> list[ResolvedTopic]:
        return [self.get(name) for name in self._by_name]

    def get(self, name: str) -> ResolvedTopic:
        spec = self._by_name[name]
        return ResolvedTopic(
            spec=spec,
            name=self._settings.topic(spec.name),
            partitions=spec.partitions or self._settings.partitions,
            replication_factor=self._settings.replication_factor,
            min_insync=self._settings.min_insync,
        )

    def name(self, name: str) -> str:
        return self.get(name).name

    @property
    def prefix(self) -> str:
        return self._settings.topic_prefix

    @property
    def replication_factor(self) -> int:
        return self._settings.replication_factor

    def changelog_configs(self) -> dict[str, str]:
        """Configs of the topics faust creates for the agents' tables (its changelogs),
        beside its `topic_replication_factor`: the state they hold is as precious as
        the catalog's topics."""
        return {"min.insync.replicas": str(self._settings.min_insync)}
