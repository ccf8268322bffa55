"""Prometheus metrics of the incident agents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from schemas import Incident, IncidentEvent, Notification
from streams.metrics import WorkerMetrics


class AgentMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.ledger = Counter("tocsin_incident_events_total", "Ledger entries by kind.",
                              ["kind"], registry=r)  # fmt: skip
        self.notifications = Counter("tocsin_notifications_requested_total",
                                     "Notifications written to the outbox.",
                                     ["channel", "kind"], registry=r)  # fmt: skip
        self.suppressed = Counter("tocsin_alerts_suppressed_total",
                                  "Alerts that opened nothing: silenced, in maintenance "
                                  "or inhibited.", registry=r)  # fmt: skip
        self.stalls = Counter("tocsin_partition_stalls_total",
                              "Assigned input partitions found unconsumed with records "
                              "waiting, and put back in the fetcher.", ["topic"],
                              registry=r)  # fmt: skip
        self.gap_records = Counter("tocsin_gap_records_recovered_total",
                                   "Records faust skipped over and the agents read "
                                   "directly instead of losing them.", ["topic"],
                                   registry=r)  # fmt: skip
        self.open = Gauge("tocsin_incidents_open", "Incidents triggered or acknowledged.",
                          registry=r)  # fmt: skip
        buckets = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 86400)
        self.tta = Histogram("tocsin_time_to_acknowledge_seconds", "Opened to acknowledged.",
                             ["service", "team"], buckets=buckets, registry=r)  # fmt: skip
        self.ttr = Histogram("tocsin_time_to_resolve_seconds", "Opened to resolved.",
                             ["service", "team"], buckets=buckets, registry=r)  # fmt: skip
        self._open: set[str] = set()
        # (the label values are schema Literals: a few dozen children at most)
        self._kinds: dict[str, Any] = {}
        self._sent: dict[tuple[str, str], Any] = {}

    def record(self, effects: Sequence[IncidentEvent | Notification | Incident]) -> None:
        """MTTA/MTTR per service and team come from the histograms' sums and counts."""
        # labels() validates and locks on every call: its children are looked up once
        kinds, sent = self._kinds, self._sent
        for e in effects:
            if isinstance(e, IncidentEvent):
                child = kinds.get(e.kind)
                if child is None:
                    child = kinds[e.kind] = self.ledger.labels(kind=e.kind)
                child.inc()
            elif isinstance(e, Notification):
                hit = sent.get((e.channel, e.kind))
                if hit is None:
                    hit = sent[e.channel, e.kind] = self.notifications.labels(
                        channel=e.channel, kind=e.kind)  # fmt: skip
                hit.inc()
            else:
                self._snapshot(e)
        self.open.set(len(self._open))

    def _snapshot(self, inc: Incident) -> None:
        labels = {"service": inc.service or "", "team": inc.team or ""}
        was_open = inc.incident_id in self._open
        if inc.status == "resolved":
            self._open.discard(inc.incident_id)
            if was_open and inc.resolved_at:
                self.ttr.labels(**labels).observe((inc.resolved_at - inc.opened_at).total_seconds())
        else:
            self._open.add(inc.incident_id)
        if inc.status == "acknowledged" and inc.acknowledged_at and was_open:
            self.tta.labels(**labels).observe((inc.acknowledged_at - inc.opened_at).total_seconds())
