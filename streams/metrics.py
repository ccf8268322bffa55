"""Prometheus metrics of a tocsin worker; one registry per process, passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class WorkerMetrics:
    """Counters every worker kind shares. Workers add their own beside these."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.records_processed = Counter(
            "tocsin_records_processed_total",
            "Records consumed and handled, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tocsin_dead_letters_total",
            "Records sent to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
