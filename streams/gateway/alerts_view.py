"""The firing alerts, as the Alertmanager API lists them: the alerts of every open
incident, read from the compacted `incidents` topic (the agents' snapshots).

An incident lists its tracked alerts with their labels, first and last sighting; alerts
summarised in an alert storm are not listed one by one (the incident counts them).
Behind the ``AlertView`` protocol: a read model in a database can take its place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas import DecodeError, Incident, decode


@dataclass(frozen=True, slots=True)
class FiringAlert:
    fingerprint: str
    labels: dict[str, str]
    starts_at: datetime
    updated_at: datetime
    incident_id: str
    receiver: str  # the owning team, or "tocsin"
    group_labels: dict[str, str]
    summary: str
    tenant: str = "default"


class AlertView(Protocol):
    def firing(self) -> list[FiringAlert]: ...


class OpenIncidentAlerts:
    """Firing alerts of open incidents, by incident; fed by ``read_incident``."""

    def __init__(self) -> None:
        self._by_incident: dict[str, list[FiringAlert]] = {}
        self._lock = threading.Lock()

    def firing(self) -> list[FiringAlert]:
        with self._lock:
            return [a for alerts in self._by_incident.values() for a in alerts]

    def read_incident(self, key: bytes | None, value: bytes | None) -> None:
        """One record of `incidents` (a tombstone forgets the incident)."""
        if not value:
            if key:
                with self._lock:
                    self._by_incident.pop(key.decode(errors="replace"), None)
            return
        try:
            inc = decode(Incident, value)
        except DecodeError:
            return  # the agents own this topic's validity; the gateway only reads it
        alerts = [] if inc.status == "resolved" else [
            FiringAlert(a.fingerprint, dict(a.labels), a.first_seen, a.last_seen, inc.incident_id,
                        inc.team or "tocsin", dict(inc.labels), inc.title, inc.tenant)
            for a in inc.alerts if a.status == "firing"
        ]  # fmt: skip
        with self._lock:
            if alerts:
                self._by_incident[inc.incident_id] = alerts
            else:
                self._by_incident.pop(inc.incident_id, None)
