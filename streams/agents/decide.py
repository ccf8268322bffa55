"""The work agent's step over a batch of `incident-work` records, without Kafka.

`Groups.decide` applies the pure core to every record of a batch in order (the
records of one group in their offset order, whatever partitions the batch mixes)
and returns every effect plus one pending state write per group touched. The
agent sends the effects, waits for Kafka's acknowledgement of all of them, and only
then calls `written` and writes the table: effects are acknowledged before the
state that implies them is written (a crash in between replays the batch on the
old state and re-emits the same ids).

Decoded group states are cached per key next to the serialized copy the table holds
(`cached[key] = (bytes in the table, state)`); a cache entry counts only while the
table still holds that very bytes object, so a rebalance or a changelog restore,
which puts other objects in the table, can never serve a stale state. A batch that
fails drops the cache (`forget`): the states it mutated were never written.

`incident-work` values (bundle.py): the router bundles the alerts of one consumed
batch that go to the same partition into one record, faust's per-record consumer
path costing more than deciding an alert; every event of a record is applied with
the record's offset as its group's input_offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import structlog
from aiokafka.partitioner import murmur2

from processors.incidents.ledger import Effect
from processors.incidents.lifecycle import (
    expired,
    next_deadline,
    on_alert,
    on_command,
    on_receipt,
    on_tick,
)
from processors.incidents.state import GroupState, Route, encode, from_dict
from processors.incidents.suppression import Suppressions
from processors.incidents.tenants import Tenants
from schemas import Alert, Command, DeliveryReceipt, Incident, decode
from schemas.config import Config
from streams.agents.bundle import TICK, alert_bundle, items, work_value

log = structlog.get_logger(__name__)
__all__ = ["TICK", "Batch", "Groups", "Work", "Write", "alert_bundle", "latest_snapshots",
           "partition_of", "work_value"]  # fmt: skip


def partition_of(key: bytes, partitions: int) -> int:
    """The partition murmur2 (Java clients, aiokafka, librdkafka's murmur2_random) gives."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def latest_snapshots(effects: Sequence[Effect]) -> list[Effect]:
    """The effects worth sending: every ledger entry and notification, and of each
    incident's snapshots only the batch's last.

    `incidents` is compacted by incident id and read for the latest snapshot only, so a
    snapshot the same batch supersedes would be written to be compacted away. Versions
    are not renumbered: incident@N names the same content whatever the batch
    boundaries, and a replay writes another subset of the same snapshots."""
    last = {e.incident_id: i for i, e in enumerate(effects) if isinstance(e, Incident)}
    return [e for i, e in enumerate(effects)
            if not isinstance(e, Incident) or last[e.incident_id] == i]  # fmt: skip


@dataclass(slots=True)
class Work:
    """One `incident-work` record as the step needs it."""

    key: bytes
    value: bytes
    partition: int
    offset: int


@dataclass(slots=True)
class Write:
    """A pending table write: the new state of a group, or None to forget it."""

    key: bytes
    partition: int
    state: GroupState | None
    value: bytes | None = None


@dataclass
class Batch:
    effects: list[Effect] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    suppressed: int = 0
    applied: int = 0  # records the core was applied to (replays excluded)
    # commands not applied, (the original record, why): the agent dead-letters them
    refused: list[tuple[bytes, str]] = field(default_factory=list)


class Deciding:
    """One batch under way: `add` its records in order, then `done`."""

    __slots__ = ("_groups", "_out", "_started", "_table", "_touched")

    def __init__(self, groups: Groups, table: Mapping[bytes, bytes | None]) -> None:
        self._groups, self._table, self._out = groups, table, Batch()
        self._touched: dict[bytes, tuple[int, GroupState | None]] = {}
        self._started: set[tuple[bytes, int]] = set()  # (group, record) begun in this batch

    def add(self, rec: Work) -> None:
        touched, table, started = self._touched, self._table, self._started
        for key, msg, body in items(rec.key, rec.value):
            st = touched[key][1] if key in touched else self._groups._load(key, table.get(key))
            if (st is not None and rec.offset <= st.input_offset
                    and (key, rec.offset) not in started):  # fmt: skip
                continue  # a replay of what the table already holds
            started.add((key, rec.offset))
            st = self._groups._apply(key, msg, body, rec.offset, st, self._out)
            if st is not None or key in touched or table.get(key):
                touched[key] = (rec.partition, st)

    def done(self) -> Batch:
        self._out.writes = [Write(k, p, st) for k, (p, st) in self._touched.items()]
        return self._out


class Groups:
    """Decisions for the groups of the partitions this worker owns, plus the timer's scan.

    Each group is decided with its own tenant's configuration and suppressions."""

    def __init__(self, cfg: Config | Tenants, sup: Suppressions | None,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self._tenants = cfg if isinstance(cfg, Tenants) else Tenants.single(cfg, sup)
        self._clock = clock
        self._cached: dict[bytes, tuple[bytes, GroupState]] = {}
        self._deadlines: dict[bytes, tuple[bytes, datetime | None]] = {}
        self._ticked: dict[bytes, str] = {}

    def _load(self, key: bytes, stored: bytes | None) -> GroupState | None:
        if not stored:
            return None
        hit = self._cached.get(key)
        if hit is not None and hit[0] is stored:
            return hit[1]
        st = from_dict(orjson.loads(stored))
        self._cached[key] = (stored, st)
        return st

    def decide(self, batch: Sequence[Work], table: Mapping[bytes, bytes | None]) -> Batch:
        step = self.deciding(table)
        for rec in batch:
            step.add(rec)
        return step.done()

    def deciding(self, table: Mapping[bytes, bytes | None]) -> Deciding:
        """A batch decided record by record (the agent lets other tasks run in between)."""
        return Deciding(self, table)

    def _apply(self, key: bytes, msg: dict[str, Any], body: Alert | bytes, offset: int,
               st: GroupState | None, out: Batch) -> GroupState | None:  # fmt: skip
        now = self._clock()
        kind = msg["t"]
        tenants = self._tenants
        if kind == "alert":
            alert = body if isinstance(body, Alert) else decode(Alert, body)
            st = st or GroupState(group_key=msg["gk"], tenant=alert.tenant,
                                  route=Route(**msg["route"]))  # fmt: skip
            cfg = tenants.config(st.tenant)
            outcome = on_alert(st, alert, now, cfg, tenants.suppressions(st.tenant))
            if outcome.suppressed is not None:
                log.info("alert_suppressed", fingerprint=alert.fingerprint,
                         tenant=st.tenant, reason=outcome.suppressed)  # fmt: skip
                out.suppressed += 1
        elif st is None:
            return None
        elif kind == "command":
            assert isinstance(body, bytes)  # only alerts travel rebuilt (bundle.py)
            cmd = decode(Command, body)
            outcome = on_command(st, cmd, now, tenants.config(st.tenant))
            if outcome.refused is not None:
                log.warning("command_refused", incident_id=cmd.incident_id, action=cmd.action,
                            tenant=cmd.tenant, reason=outcome.refused)  # fmt: skip
                out.refused.append((body, outcome.refused))
        elif kind == "receipt":
            assert isinstance(body, bytes)
            outcome = on_receipt(st, decode(DeliveryReceipt, body), now)
        else:
            self._ticked.pop(key, None)
            cfg = tenants.config(st.tenant)
            if expired(st, now, cfg):
                return None  # resolved and past its reopen window: forget it
            outcome = on_tick(st, now, cfg, tenants.suppressions(st.tenant))
        out.applied += 1
        out.effects.extend(outcome.effects)
        st.input_offset = offset
        return st

    def written(self, batch: Batch) -> list[Write]:
        """Serialize the batch's states (call once its effects are acknowledged)."""
        for w in batch.writes:
            if w.state is None:
                self._cached.pop(w.key, None)
                self._deadlines.pop(w.key, None)
                continue
            w.value = encode(w.state)
            self._cached[w.key] = (w.value, w.state)
            cfg = self._tenants.config(w.state.tenant)
            self._deadlines[w.key] = (w.value, next_deadline(w.state, cfg))
        return batch.writes

    def forget(self) -> None:
        """A batch failed after mutating cached states: nothing it decided was written."""
        self._cached.clear()
        self._deadlines.clear()

    def due(self, table: Mapping[bytes, bytes | None], now: datetime) -> list[bytes]:
        """Groups whose deadline passed and that have no tick on its way yet."""
        keys = []
        seen = 0
        for key, stored in table.items():
            if not stored:
                continue
            seen += 1
            hit = self._deadlines.get(key)
            if hit is not None and hit[0] is stored:
                deadline = hit[1]
            else:
                view = _deadline_view(orjson.loads(stored))
                deadline = next_deadline(view, self._tenants.config(view.tenant))
                self._deadlines[key] = (stored, deadline)
            if deadline is None or deadline > now:
                continue
            stamp = deadline.isoformat()
            if self._ticked.get(key) == stamp:
                continue  # a tick for this deadline is already on its way
            self._ticked[key] = stamp
            keys.append(key)
        if len(self._deadlines) > 2 * seen + 1024 or len(self._cached) > 2 * seen + 1024:
            self._prune(table)
        return keys

    def _prune(self, table: Mapping[bytes, bytes | None]) -> None:
        """Drop cache entries of groups this worker no longer holds (moved partitions)."""
        for cache in (self._cached, self._deadlines):
            for key in [k for k, (v, _) in cache.items() if table.get(k) is not v]:
                del cache[key]


_DEADLINES = ("notify_at", "next_escalation_at", "snoozed_until", "update_at", "remind_at",
              "flap_clear_at", "resolved_at", "storm_at")  # fmt: skip


def _deadline_view(doc: dict[str, Any]) -> GroupState:
    """Only the fields next_deadline reads, without rebuilding members."""
    st = GroupState(group_key="", tenant=doc.get("tenant", "default"))
    st.status = doc["status"]
    for name in _DEADLINES:
        setattr(st, name, datetime.fromisoformat(doc[name]) if doc.get(name) else None)
    return st
