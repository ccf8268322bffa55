"""Prometheus metrics of a processor worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.metrics import WorkerMetrics


class ProcessorMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.late = Counter(
            "tocsin_late_records_total",
            "Samples later than the allowed lateness, sent to `late`.",
            ["topic"],
            registry=r,
        )
        self.transitions = Counter(
            "tocsin_transitions_total", "Alert transitions emitted.", ["rule", "status"], registry=r
        )
        self.commit_seconds = Histogram(
            "tocsin_transaction_commit_seconds",
            "Kafka transaction commit time.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.active_series = Gauge(
            "tocsin_active_series", "Series held by the rule engines.", registry=r
        )
        self.anomaly_bytes = Gauge(
            "tocsin_anomaly_state_bytes", "Estimated bytes held by anomaly detectors.", registry=r
        )
        self.anomaly_series = Gauge(
            "tocsin_anomaly_series",
            "Series scored by anomaly detectors (bytes / series = memory per series).",
            registry=r,
        )
        self.window_faults = Counter(
            "tocsin_window_faults_total",
            "Windows whose close raised (a fault of tocsin's own) and were skipped, so that "
            "the partition's other rules and windows go on; the error is in the log.",
            ["rule"],
            registry=r,
        )
        self.tenant_refused = Counter(
            "tocsin_tenant_series_refused_total",
            "Samples of a new series refused because their tenant had its cap of series "
            "(settings.max_series_per_tenant) in the partition; each is a dead letter.",
            ["tenant"],
            registry=r,
        )
        self.restores = Counter(
            "tocsin_state_restores_total",
            "Partitions restored from a checkpoint (+ replay).",
            registry=r,
        )
