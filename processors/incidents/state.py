"""The state of one alert group: at most one incident at a time, and its members."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

import orjson

from processors.incidents import storm
from processors.incidents.storm import Digest
from schemas.alerts import Severity
from schemas.notifications import Channel

Status = Literal["triggered", "acknowledged", "resolved"]


@dataclass
class Member:
    fingerprint: str
    rule: str
    status: Literal["firing", "resolved"]
    severity: Severity
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    first_seen: datetime
    last_seen: datetime
    repeats: int = 0
    summary: str = ""
    runbook_url: str | None = None
    anomaly_score: float | None = None
    # an anomaly's detail as JSON (schemas.alerts.AnomalyDetail): what a page shows of it
    anomaly: dict[str, Any] | None = None
    transitions: list[datetime] = field(default_factory=list)  # recent flips (flap detection)
    suppressed: str | None = None  # why it may not page, as last announced on the ledger


@dataclass
class Route:
    """What routing decided for the group (resolved by the runtime, pure data here)."""

    service: str | None = None
    team: str | None = None
    policy: str | None = None
    severity: Severity | None = None


@dataclass
class GroupState:
    group_key: str
    tenant: str = "default"  # whose alerts these are: every record derived carries it
    incident_id: str | None = None
    generation: int = 0  # bumps on every open/reopen: part of notification ids
    opened: int = 0  # incidents this group has had: part of the incident id
    status: Status | None = None
    title: str = ""
    severity: Severity = "warning"
    route: Route = field(default_factory=Route)
    labels: dict[str, str] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    notify_at: datetime | None = None  # first notification pending (group_wait)
    update_at: datetime | None = None  # batched update pending (group_interval)
    last_notified_at: datetime | None = None
    remind_at: datetime | None = None  # unacknowledged and nobody left to escalate to
    flapping: bool = False
    flap_clear_at: datetime | None = None  # stable for a whole flap window from then on
    suppressed: str | None = None  # every firing member is silenced/inhibited (as announced)
    level: int = 0
    repeat: int = 0
    escalations: int = 0  # how many escalation steps so far (round-robin position)
    pages: int = 0  # how many times a level was paged: part of notification ids
    next_escalation_at: datetime | None = None
    snoozed_until: datetime | None = None
    assignee: str | None = None
    priority: str | None = None  # set by a responder: beats the derived priority
    notified: list[tuple[Channel, str]] = field(default_factory=list)
    seq: int = 0
    version: int = 0
    recent: list[str] = field(default_factory=list)  # event ids applied: replays are no-ops
    input_offset: int = -1  # highest incident-work offset applied (the runtime's dedup)
    member_bytes: int = 0  # estimated JSON of `members` (storm.member_bytes)
    storm: Digest | None = None  # the alerts beyond the tracked members (storm.py)
    storm_at: datetime | None = None  # the digest is due on the ledger

    @property
    def open(self) -> bool:
        return self.status in ("triggered", "acknowledged")

    def firing(self) -> list[Member]:
        """The tracked members that fire (summarised ones: `storm.firing`)."""
        return [m for m in self.members.values() if m.status == "firing"]

    def quiet(self) -> bool:
        """No alert of the group fires, tracked or summarised."""
        if self.storm is not None and self.storm.firing > 0:
            return False
        return not any(m.status == "firing" for m in self.members.values())


_TIMES = ("opened_at", "acknowledged_at", "resolved_at", "notify_at", "update_at",
          "last_notified_at", "remind_at", "flap_clear_at", "next_escalation_at",
          "snoozed_until", "storm_at")  # fmt: skip


def _dt(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def to_dict(st: GroupState) -> dict[str, Any]:
    """JSON-ready (orjson serialises dataclasses and aware datetimes natively; a storm
    sketch needs `storm.encode_default`)."""
    return asdict(st)


def encode(st: GroupState) -> bytes:
    """The table value of a group (orjson serialises the dataclasses as to_dict would,
    without asdict's copies; the storm sketch as base64)."""
    return orjson.dumps(st, default=storm.encode_default)


def from_dict(d: dict[str, Any]) -> GroupState:
    """A group state from its table value, any version: states written before storms
    were summarised hold no storm fields, and may hold more members than a group tracks
    now; those beyond the bounds are folded into the digest as they load."""
    members = {
        fp: Member(**{**m, "first_seen": _dt(m["first_seen"]), "last_seen": _dt(m["last_seen"]),
                      "transitions": [datetime.fromisoformat(t) for t in m["transitions"]]})
        for fp, m in d.pop("members").items()
    }  # fmt: skip
    route = Route(**d.pop("route"))
    notified = [(c, t) for c, t in d.pop("notified")]
    digest = d.pop("storm", None)
    sized = "member_bytes" in d
    for key in _TIMES:
        d[key] = _dt(d.get(key))
    st = GroupState(members=members, route=route, notified=notified, **d)
    st.storm = storm.from_dict(digest) if digest else None
    if not sized:
        _fold(st)
    return st


def _size(m: Member) -> int:
    return storm.size(m.fingerprint, m.rule, m.summary, m.runbook_url, m.labels,
                      max(len(m.transitions), 1), m.anomaly)  # fmt: skip


def _fold(st: GroupState) -> None:
    """An older state: members beyond today's bounds move into the storm digest."""
    st.member_bytes, kept = 0, cast(dict[str, Member], {})
    for fp, m in st.members.items():
        n = _size(m)
        if len(kept) < storm.MAX_TRACKED and st.member_bytes + n <= storm.MEMBER_BYTES:
            kept[fp] = m
            st.member_bytes += n
            continue
        if st.storm is None:
            st.storm = Digest(first_seen=m.first_seen, last_seen=m.last_seen)
        st.storm.first_seen = min(st.storm.first_seen, m.first_seen)
        storm.fire(st.storm, fp, m.labels, m.last_seen, m.suppressed is not None)
        if m.status == "resolved":
            storm.resolve(st.storm, fp, m.last_seen)
    st.members = kept
