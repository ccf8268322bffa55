"""One heartbeat's state and the alerts its pings and the clock imply.

``(state, ping | tick, now) -> (state, alerts)``, nothing else: the runtime loads the
state, calls one of these, sends the alerts and only then writes the state.

- A ping at ``t`` moves ``last_ping`` to ``t`` (never backwards: a ping delayed behind
  a newer one changes nothing) and, if the heartbeat was missed, resolves its alert at
  ``t``.
- A tick at ``now`` past ``last_ping + interval + grace`` fires the alert, which
  starts at that deadline, not at the tick.
- A heartbeat no longer configured is forgotten; its alert, if firing, resolves.

Every alert's id derives from the heartbeat and the instant that decided it (the
deadline, or the ping's time): deciding the same input again after a crash emits the
same ids, which downstream consumers apply once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.alerts import Alert
from schemas.config.heartbeats import Heartbeat

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class HeartbeatState:
    tenant: str
    name: str
    last_ping: datetime | None = None
    missed_at: datetime | None = None  # the deadline that passed; None while healthy
    input_offset: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "name": self.name, "input_offset": self.input_offset,
                "last_ping": self.last_ping.isoformat() if self.last_ping else None,
                "missed_at": self.missed_at.isoformat() if self.missed_at else None}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> HeartbeatState:
        return cls(tenant=doc["tenant"], name=doc["name"], input_offset=doc["input_offset"],
                   last_ping=_time(doc.get("last_ping")),
                   missed_at=_time(doc.get("missed_at")))  # fmt: skip


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def deadline(st: HeartbeatState, hb: Heartbeat | None) -> datetime | None:
    """When the timer must look at this heartbeat next: its deadline while healthy,
    never while missed (only a ping changes that), at once once it is unconfigured."""
    if hb is None:
        return _LONG_AGO
    if st.missed_at is not None or st.last_ping is None:
        return None
    return st.last_ping + hb.allowance


def on_ping(st: HeartbeatState, at: datetime, hb: Heartbeat, now: datetime) -> list[Alert]:
    if st.last_ping is not None and at <= st.last_ping:
        return []  # older than what is known: the heartbeat already moved past it
    st.last_ping = at
    if st.missed_at is None:
        return []
    since, st.missed_at = st.missed_at, None
    return [_alert(st, hb, "resolved", since, at, now)]


def on_tick(st: HeartbeatState, now: datetime, hb: Heartbeat | None) -> tuple[list[Alert], bool]:
    """The alerts, and whether the state is to be kept (False: forget it)."""
    if hb is None:
        if st.missed_at is None:
            return [], False
        return [_alert(st, None, "resolved", st.missed_at, max(now, st.missed_at), now)], False
    due = deadline(st, hb)
    if due is None or now < due:
        return [], True
    st.missed_at = due
    return [_alert(st, hb, "firing", due, None, now)], True


def fingerprint(tenant: str, name: str) -> str:
    return f"heartbeat:{name}" if tenant == "default" else f"heartbeat:{tenant}/{name}"


def _alert(st: HeartbeatState, hb: Heartbeat | None, status: str, starts: datetime,
           ends: datetime | None, now: datetime) -> Alert:  # fmt: skip
    fp = fingerprint(st.tenant, st.name)
    decided = (ends or starts).isoformat()
    labels = {**(hb.labels if hb else {}), "alertname": st.name, "heartbeat": st.name}
    every = _span(hb.interval) if hb else "its interval"
    last = st.last_ping.isoformat(timespec="seconds") if st.last_ping else "never"
    summary = hb.summary if hb and hb.summary else (
        f"heartbeat {st.name} missed: no ping since {last} (expected every {every})")  # fmt: skip
    notes = {"last_ping": last, "expected_every": every}
    if hb is not None and hb.grace:
        notes["grace"] = _span(hb.grace)
    if hb is None:
        notes["removed"] = "the heartbeat is no longer configured"
    return Alert(
        event_id=hashlib.sha256(f"{fp}|{status}|{decided}".encode()).hexdigest()[:32],
        tenant=st.tenant, produced_at=now, fingerprint=fp, status=status,
        rule="heartbeat", source="heartbeat", severity=hb.severity if hb else "critical",
        labels=labels, annotations=notes, summary=summary[:8000], starts_at=starts, ends_at=ends,
    )  # fmt: skip


def _span(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
