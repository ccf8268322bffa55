"""Prometheus metrics of the incident agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

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
        self.tta = Histogram("tocsin_time_to_acknowledge_seconds",
                             "Opened or reopened to the first acknowledgement.",
                             ["service", "team"], buckets=buckets, registry=r)  # fmt: skip
        self.ttr = Histogram("tocsin_time_to_resolve_seconds", "Opened or reopened to resolved.",
                             ["service", "team"], buckets=buckets, registry=r)  # fmt: skip
        self._open: set[str] = set()
        self._timed = _Durations(self.tta, self.ttr)
        # (the label values are schema Literals: a few dozen children at most)
        self._kinds: dict[str, Any] = {}
        self._sent: dict[tuple[str, str], Any] = {}

    def record(self, effects: Sequence[IncidentEvent | Notification | Incident]) -> None:
        """MTTA/MTTR per service and team come from the histograms' sums and counts."""
        # labels() validates and locks on every call: its children are looked up once
        kinds, sent = self._kinds, self._sent
        snapshots: dict[str, Incident] = {}
        for e in effects:
            if isinstance(e, Incident):
                snapshots[e.incident_id] = e
        for e in effects:
            if isinstance(e, IncidentEvent):
                child = kinds.get(e.kind)
                if child is None:
                    child = kinds[e.kind] = self.ledger.labels(kind=e.kind)
                child.inc()
                self._timed.observe(e, snapshots.get(e.incident_id))
            elif isinstance(e, Notification):
                hit = sent.get((e.channel, e.kind))
                if hit is None:
                    hit = sent[e.channel, e.kind] = self.notifications.labels(
                        channel=e.channel, kind=e.kind)  # fmt: skip
                hit.inc()
            elif e.status == "resolved":
                self._open.discard(e.incident_id)
            else:
                self._open.add(e.incident_id)
        self.open.set(len(self._open))


REMEMBERED = 65_536  # ledger entry ids and incidents remembered; past that, the oldest go


@dataclass(slots=True)
class _Since:
    at: datetime  # opened or reopened
    acknowledged: bool = False


class _Durations:
    """Time to acknowledge and to resolve, observed from the ledger: once per entry (a
    snapshot repeats the incident's state after every change, and a batch processed
    again after a rebalance repeats its entries, with the same ids).

    Acknowledged is the first `acknowledged` or `snoozed` entry (a snooze acknowledges)
    since the incident opened or reopened; both durations count from that opening. The
    service and team are the snapshot's that the core emits with every such entry."""

    def __init__(self, tta: Histogram, ttr: Histogram) -> None:
        self._tta, self._ttr = tta, ttr
        self._seen: dict[str, None] = {}  # ordered: the oldest first
        self._since: dict[str, _Since] = {}

    def observe(self, e: IncidentEvent, snap: Incident | None) -> None:
        if e.kind not in _TIMED or e.event_id in self._seen:
            return
        _remember(self._seen, e.event_id, None)
        since = self._since.get(e.incident_id)
        if e.kind in ("opened", "reopened"):
            _remember(self._since, e.incident_id, _Since(e.at))
            return
        if snap is None:
            return  # never: the core snapshots the incident with each of these entries
        start = since.at if since is not None else snap.opened_at  # opened before a restart
        labels = {"service": snap.service or "", "team": snap.team or ""}
        if e.kind == "resolved":
            self._since.pop(e.incident_id, None)
            self._ttr.labels(**labels).observe((e.at - start).total_seconds())
        elif since is None or not since.acknowledged:
            _remember(self._since, e.incident_id, _Since(start, acknowledged=True))
            self._tta.labels(**labels).observe((e.at - start).total_seconds())


_TIMED = frozenset({"opened", "reopened", "acknowledged", "snoozed", "resolved"})
T = TypeVar("T")


def _remember(memory: dict[str, T], key: str, value: T) -> None:
    memory.pop(key, None)
    memory[key] = value
    if len(memory) > REMEMBERED:
        del memory[next(iter(memory))]
