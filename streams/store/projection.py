"""Records of the incident topics applied to the store, with their offsets, in one
transaction.

Exactly-once with respect to the database: the transaction that writes a batch's rows
also moves the stored next offset of every partition it read, and skips every record
below the stored offset, so a batch replayed after a crash, a rebalance or a second
projector's late write changes nothing, and a record is never skipped (the consumer
starts at the stored offsets, or at the beginning when it could not read them).
On PostgreSQL the offset rows are locked for the transaction (FOR UPDATE); SQLite
has one writer at a time.

What each topic becomes:
- `incidents` (snapshots): the incident row and its members, only ever replaced by a
  snapshot of the same or a newer version;
- `incident-events` (the ledger): timeline rows, once per (incident, seq);
- `notifications`: who was paged, once per notification id (deliveries are ledger rows);
- `commands`: silences created and expired, on-call overrides made at run time, status
  page changes (streams/store/status_rows.py; every other action shows in the ledger
  once the agents applied it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, and_, delete, select, update

from schemas import Command, DecodeError, Incident, IncidentEvent, Notification, decode
from streams.store import bulk
from streams.store.status_rows import apply_status
from streams.store.status_tables import PROJECTED_STATUS
from streams.store.tables import (
    incidents,
    members,
    notifications,
    offsets,
    overrides,
    projector_seen,
    silences,
    timeline,
)

Kind = Literal["incidents", "incident-events", "notifications", "commands"]
KINDS: tuple[Kind, ...] = ("incidents", "incident-events", "notifications", "commands")


@dataclass(frozen=True, slots=True)
class Rec:
    """One consumed record: the catalog kind of its topic, where it was, its value."""

    kind: Kind
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass
class Applied:
    """What a batch did: rows per kind, records skipped as already applied, bad ones."""

    applied: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    invalid: list[tuple[Rec, str]] = field(default_factory=list)


def stored_offsets(conn: Connection, lock: bool = False,
                   topics: Sequence[str] | None = None) -> dict[tuple[str, int], int]:  # fmt: skip
    q = select(offsets.c.topic, offsets.c.partition, offsets.c.next_offset)
    if topics is not None:
        q = q.where(offsets.c.topic.in_(list(topics)))
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return {(t, p): o for t, p, o in conn.execute(q)}


def record_seen(conn: Connection, projector: str, at: datetime, behind: int) -> None:
    """A projector heard from Kafka at `at`, `behind` records short of its partitions'
    ends; rows of projectors silent for a day (replaced pods) are dropped."""
    bulk.insert(conn, projector_seen, [{"projector": projector, "seen_at": at,
                                        "behind": behind}], on_conflict="update")  # fmt: skip
    conn.execute(delete(projector_seen).where(projector_seen.c.seen_at < at - timedelta(days=1)))


def apply_batch(conn: Connection, batch: Sequence[Rec]) -> Applied:
    """Apply `batch` (records in their partitions' order) inside the caller's transaction."""
    out = Applied()
    if not batch:
        return out
    stored = stored_offsets(conn, lock=True, topics=sorted({r.topic for r in batch}))
    fresh: list[Rec] = []
    ends: dict[tuple[str, int], int] = {}
    for r in batch:
        where = (r.topic, r.partition)
        if r.offset < stored.get(where, 0) or r.offset < ends.get(where, 0):
            out.skipped += 1
            continue
        fresh.append(r)
        ends[where] = r.offset + 1
    rows = _Rows(conn.dialect.name)
    for r in fresh:
        try:
            rows.add(r)
        except DecodeError as exc:
            out.invalid.append((r, str(exc)))
    rows.write(conn, out)
    _save_offsets(conn, stored, ends)
    return out


def _save_offsets(conn: Connection, stored: dict[tuple[str, int], int],
                  ends: dict[tuple[str, int], int]) -> None:  # fmt: skip
    new = [{"topic": t, "partition": p, "next_offset": o}
           for (t, p), o in ends.items() if (t, p) not in stored]  # fmt: skip
    if new:
        conn.execute(offsets.insert(), new)
    for (t, p), o in ends.items():
        if (t, p) in stored:
            conn.execute(update(offsets).where(and_(offsets.c.topic == t, offsets.c.partition == p))
                         .values(next_offset=o))  # fmt: skip


class _Rows:
    """The rows of one batch, gathered by table, then written with a few statements."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.snapshots: dict[str, Incident] = {}
        self.events: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.silences: list[dict[str, Any]] = []
        self.expiries: list[Command] = []
        self.overrides: list[dict[str, Any]] = []
        self.status: list[Command] = []

    def add(self, r: Rec) -> None:
        if r.kind == "incidents":
            inc = decode(Incident, r.value)
            seen = self.snapshots.get(inc.incident_id)
            if seen is None or inc.version >= seen.version:
                self.snapshots[inc.incident_id] = inc
        elif r.kind == "incident-events":
            ev = decode(IncidentEvent, r.value)
            self.events.append({
                "incident_id": ev.incident_id, "seq": ev.seq, "tenant": ev.tenant,
                "kind": ev.kind, "at": ev.at, "actor": ev.actor, "message": ev.message,
                "details": ev.details,
            })  # fmt: skip
        elif r.kind == "notifications":
            n = decode(Notification, r.value)
            self.notes.append({
                "notification_id": n.notification_id, "incident_id": n.incident_id,
                "tenant": n.tenant, "kind": n.kind, "channel": n.channel, "target": n.target,
                "escalation_level": n.escalation_level, "at": n.at,
            })  # fmt: skip
        else:
            self._command(decode(Command, r.value))

    def _command(self, cmd: Command) -> None:
        if cmd.action == "silence" and cmd.silence is not None:
            s = cmd.silence
            self.silences.append({
                "silence_id": cmd.event_id, "tenant": cmd.tenant,
                "matchers": [m.model_dump() for m in s.matchers],
                "starts_at": s.starts_at, "ends_at": s.ends_at, "author": s.author,
                "comment": s.comment,
                "weekly": s.weekly.model_dump(mode="json") if s.weekly else None,
                "created_at": cmd.at, "origin": cmd.origin,
            })  # fmt: skip
        elif cmd.action == "expire_silence":
            self.expiries.append(cmd)
        elif cmd.action == "override" and cmd.override is not None:
            o = cmd.override
            self.overrides.append({
                "override_id": cmd.event_id, "tenant": cmd.tenant, "schedule": o.schedule,
                "user": o.user, "starts_at": o.start, "ends_at": o.end, "author": o.author,
                "created_at": cmd.at,
            })  # fmt: skip
        elif cmd.action == "status" and cmd.status is not None:
            self.status.append(cmd)

    def write(self, conn: Connection, out: Applied) -> None:
        n = self._snapshots(conn)
        for name, table, rows in (("timeline", timeline, self.events),
                                  ("notifications", notifications, self.notes),
                                  ("silences", silences, self.silences),
                                  ("overrides", overrides, self.overrides)):  # fmt: skip
            if rows:
                bulk.insert(conn, table, rows)
                out.applied[name] = out.applied.get(name, 0) + len(rows)
        for cmd in self.expiries:
            conn.execute(update(silences)
                         .where(and_(silences.c.silence_id == cmd.silence_id,
                                     silences.c.tenant == cmd.tenant,
                                     silences.c.expired_at.is_(None)))
                         .values(expired_at=cmd.at, expired_by=cmd.actor))  # fmt: skip
        if self.expiries:
            out.applied["expiries"] = len(self.expiries)
        for name, n_status in apply_status(conn, self.status).items():
            out.applied[name] = out.applied.get(name, 0) + n_status
        if n:
            out.applied["incidents"] = n

    def _snapshots(self, conn: Connection) -> int:
        """Upsert the newest snapshot of each incident unless the store has a newer one."""
        if not self.snapshots:
            return 0
        ids = list(self.snapshots)
        c = incidents.c
        have = dict(conn.execute(select(c.incident_id, c.version)
                                 .where(bulk.among(conn, c.incident_id, ids))).all())  # fmt: skip
        todo = [inc for i, inc in self.snapshots.items() if have.get(i, -1) <= inc.version]
        if not todo:
            return 0
        bulk.insert(conn, incidents, [_incident_row(inc) for inc in todo], on_conflict="update")
        done = [i.incident_id for i in todo]
        conn.execute(delete(members).where(bulk.among(conn, members.c.incident_id, done)))
        bulk.insert(conn, members, [_member_row(inc.incident_id, a) for inc in todo
                                    for a in inc.alerts])  # fmt: skip
        return len(todo)


def _incident_row(inc: Incident) -> dict[str, Any]:
    labels = " ".join(f"{k}={v}" for k, v in sorted(inc.labels.items()))
    extra = inc.storm.summarised if inc.storm is not None else 0
    return {
        "incident_id": inc.incident_id, "tenant": inc.tenant, "group_key": inc.group_key,
        "version": inc.version, "status": inc.status, "title": inc.title,
        "severity": inc.severity, "priority": inc.priority, "service": inc.service,
        "team": inc.team, "labels": inc.labels, "opened_at": inc.opened_at,
        "acknowledged_at": inc.acknowledged_at, "resolved_at": inc.resolved_at,
        "updated_at": inc.produced_at, "assignee": inc.assignee,
        "escalation_policy": inc.escalation_policy, "escalation_level": inc.escalation_level,
        "snoozed_until": inc.snoozed_until, "flapping": inc.flapping,
        "notified_targets": inc.notified_targets,
        "storm": inc.storm.model_dump(mode="json") if inc.storm is not None else None,
        "alert_count": len(inc.alerts) + extra,
        "search": f"{inc.title} {labels}".lower(),
    }  # fmt: skip


def _member_row(incident_id: str, a: Any) -> dict[str, Any]:
    return {
        "incident_id": incident_id, "fingerprint": a.fingerprint, "rule": a.rule,
        "status": a.status, "severity": a.severity, "labels": a.labels, "value": a.value,
        "threshold": a.threshold, "first_seen": a.first_seen, "last_seen": a.last_seen,
        "repeats": a.repeats,
        "anomaly": a.anomaly.model_dump(mode="json") if a.anomaly is not None else None,
    }  # fmt: skip


def clear(conn: Connection) -> None:
    """Empty every projected table and forget the offsets (a rebuild starts here)."""
    for table in (members, timeline, notifications, silences, overrides, *PROJECTED_STATUS,
                  incidents, offsets):  # fmt: skip
        conn.execute(delete(table))


__all__ = ["KINDS", "Applied", "Kind", "Rec", "apply_batch", "clear", "stored_offsets"]
