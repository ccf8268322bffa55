"""Alertmanager's resolve timeout as a pure core: a firing alert that carries ``ends_at``
holds a lease until then; a later transition of the same fingerprint replaces or ends
it; a lease that runs out becomes the alert's resolved transition.

Prometheus re-sends a firing alert every minute with ``endsAt`` a few evaluation
intervals ahead, and Alertmanager resolves an alert whose ``endsAt`` passed without a
re-send: this is that rule, with time as an argument. A lease never lasts longer than
``max_lease`` after the alert was received, so the runtime can rebuild every live lease
by re-reading that much of the input (see streams/expiry).

The resolved transition's event id derives from the fingerprint and the lease, so the
same expiry decided twice (after a crash, by a replay) is the same event.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.alerts import Alert

MAX_LEASE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Expiry:
    fingerprint: str
    ends: datetime
    transition: Alert  # the alert, resolved at ``ends``


@dataclass(slots=True)
class Leases:
    """The live leases of some fingerprints (one partition of `alerts`, at run time)."""

    max_lease: timedelta = MAX_LEASE
    _alerts: dict[str, Alert] = field(default_factory=dict)  # fp -> firing alert with lease
    _ends: dict[str, datetime] = field(default_factory=dict)
    _heap: list[tuple[datetime, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._alerts)

    def observe(self, alert: Alert, received: datetime) -> None:
        """One transition read from the input, in order."""
        fp = alert.fingerprint
        if alert.status != "firing" or alert.ends_at is None:
            self._alerts.pop(fp, None)  # resolved, or a firing alert without an expiry
            self._ends.pop(fp, None)
            return
        ends = min(alert.ends_at, received + self.max_lease)
        self._alerts[fp] = alert
        self._ends[fp] = ends
        heapq.heappush(self._heap, (ends, fp))

    def next_deadline(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def due(self, now: datetime) -> list[Expiry]:
        """The leases that ran out by ``now``, with their resolved transitions. They stay
        until ``expired`` says the transition was written (``retry`` when it was not)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            ends, fp = heapq.heappop(self._heap)
            if self._ends.get(fp) == ends:
                out.append(Expiry(fp, ends, resolved(self._alerts[fp], ends, now)))
        return out

    def retry(self, e: Expiry) -> None:
        if self._ends.get(e.fingerprint) == e.ends:
            heapq.heappush(self._heap, (e.ends, e.fingerprint))

    def expired(self, e: Expiry) -> None:
        """The lease ends, unless the alert was sent again since it was found due."""
        if self._ends.get(e.fingerprint) == e.ends:
            del self._alerts[e.fingerprint], self._ends[e.fingerprint]

    def _drop_stale(self) -> None:
        while self._heap and self._ends.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)


def resolved(alert: Alert, ends: datetime, now: datetime) -> Alert:
    """The transition that ends ``alert`` at ``ends``: same alert, resolved, a derived id."""
    seed = f"expired\x00{alert.tenant}\x00{alert.fingerprint}\x00{alert.starts_at.isoformat()}"
    event_id = hashlib.sha256(f"{seed}\x00{ends.isoformat()}".encode()).hexdigest()[:32]
    annotations = {**alert.annotations, "resolved_by": "expiry: not sent again before endsAt"}
    if len(annotations) > 32:
        annotations = dict(list(annotations.items())[-32:])
    return alert.model_copy(update={
        "status": "resolved", "ends_at": max(ends, alert.starts_at), "event_id": event_id,
        "produced_at": now, "annotations": annotations,
    })  # fmt: skip
