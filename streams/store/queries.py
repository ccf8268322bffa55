"""What the API, the CLI (through the API) and the console read: functions of a
connection and a tenant, answering the models of schemas/api.py. Every query is
filtered by tenant. Blocking (SQLAlchemy): async callers run them on a thread.

Incident lists page by keyset (the sort column and the incident id, encoded in an
opaque cursor), so a page costs the same at any depth and a row that moves while a
client pages is neither shown twice nor skipped by an offset shift.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, and_, func, or_, select, tuple_

from processors.incidents.reports import Fact, grouped, noisiest_rules, stats, top_alerts
from schemas.api import (
    IncidentDetail,
    IncidentPage,
    IncidentQuery,
    IncidentSummary,
    Member,
    Paged,
    Report,
    Silence,
    SlaMonth,
    TimelineEntry,
)
from schemas.commands import Matcher, Weekly
from schemas.errors import TocsinError
from streams.store.tables import (
    incidents,
    members,
    notifications,
    overrides,
    projector_seen,
    silences,
    timeline,
)

_DETAIL_ONLY = ("group_key", "notified_targets", "storm", "search", "tenant")
SUMMARY = [c for c in incidents.c if c.name not in _DETAIL_ONLY]


class BadCursor(TocsinError, ValueError):
    """The cursor was not made by this API for this sort order."""


def _encode_cursor(sort: str, value: Any, ident: str) -> str:
    v = value.isoformat() if isinstance(value, datetime) else value
    raw = orjson.dumps([sort, v, ident])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, ident = orjson.loads(raw)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this API gave") from None
    if made_for != sort or not isinstance(ident, str):
        raise BadCursor(f"cursor: made for sort={made_for!r}, not {sort!r}")
    if sort.lstrip("-") == "priority":
        if not isinstance(value, str):
            raise BadCursor("cursor: not a cursor this API gave")
    else:
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise BadCursor("cursor: not a cursor this API gave") from None
    return value, ident


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_incidents(conn: Connection, tenant: str, q: IncidentQuery) -> IncidentPage:
    c = incidents.c
    where = [c.tenant == tenant]
    for col, values in ((c.status, q.status), (c.priority, q.priority),
                        (c.service, q.service), (c.team, q.team)):  # fmt: skip
        if values:
            where.append(col.in_(values))
    if q.since is not None:
        where.append(c.opened_at >= q.since)
    if q.until is not None:
        where.append(c.opened_at < q.until)
    for word in q.q.split():
        where.append(c.search.like(_like(word), escape="\\"))
    desc = q.sort.startswith("-")
    col = c[q.sort.lstrip("-")]
    if q.cursor:
        value, ident = _decode_cursor(q.sort, q.cursor)
        key, last = tuple_(col, c.incident_id), tuple_(_bind(col, value), ident)
        where.append(key < last if desc else key > last)
    order = [col.desc(), c.incident_id.desc()] if desc else [col.asc(), c.incident_id.asc()]
    rows = conn.execute(select(*SUMMARY).where(and_(*where)).order_by(*order)
                        .limit(q.limit + 1)).all()  # fmt: skip
    items = _summaries(rows[: q.limit])
    cursor = None
    if len(rows) > q.limit:
        last_row = rows[q.limit - 1]
        cursor = _encode_cursor(q.sort, getattr(last_row, col.name), last_row.incident_id)
    return IncidentPage(items=items, next_cursor=cursor)


def _bind(col: Any, value: Any) -> Any:
    from sqlalchemy import literal

    return literal(value, type_=col.type)


# a page validated in one call from plain dicts: a model per row, validated from the
# row's mapping, cost more than the query that fetched the page
_SUMMARIES = TypeAdapter(list[IncidentSummary])


def _summaries(rows: Sequence[Row[Any]]) -> list[IncidentSummary]:
    return _SUMMARIES.validate_python([dict(r._mapping) for r in rows])


def incident_status(conn: Connection, tenant: str, incident_id: str) -> str | None:
    c = incidents.c
    q = select(c.status).where(and_(c.incident_id == incident_id, c.tenant == tenant))
    return conn.execute(q).scalar()


def incident_detail(conn: Connection, tenant: str, incident_id: str) -> IncidentDetail | None:
    row = conn.execute(select(incidents).where(and_(
        incidents.c.incident_id == incident_id, incidents.c.tenant == tenant))).first()  # fmt: skip
    if row is None:
        return None
    ms = conn.execute(select(members).where(members.c.incident_id == incident_id)
                      .order_by(members.c.first_seen, members.c.fingerprint)).all()  # fmt: skip
    events = conn.execute(select(timeline).where(timeline.c.incident_id == incident_id)
                          .order_by(timeline.c.seq)).all()  # fmt: skip
    n = notifications.c
    pages = conn.execute(select(notifications).where(n.incident_id == incident_id)
                         .order_by(n.at, n.notification_id)).all()  # fmt: skip
    last: dict[str, tuple[str, int]] = {}
    for e in events:
        if e.kind == "delivery" and isinstance(e.details, dict):
            nid = e.details.get("notification_id")
            if isinstance(nid, str):
                last[nid] = (str(e.details.get("outcome")), int(e.details.get("attempt") or 1))
    return IncidentDetail(
        **{k: v for k, v in row._mapping.items() if k in IncidentDetail.model_fields},
        members=[Member.model_validate(dict(m._mapping)) for m in ms],
        notifications=[Paged(notification_id=p.notification_id, kind=p.kind, channel=p.channel,
                             target=p.target, escalation_level=p.escalation_level, at=p.at,
                             outcome=last.get(p.notification_id, (None, 0))[0],
                             attempts=last.get(p.notification_id, (None, 0))[1])
                       for p in pages],
        timeline=[TimelineEntry(seq=e.seq, kind=e.kind, at=e.at, actor=e.actor,
                                message=e.message, details=e.details or {}) for e in events],
    )  # fmt: skip


def changed_since(conn: Connection, tenant: str, since: datetime,
                  limit: int = 200) -> list[IncidentSummary]:  # fmt: skip
    """Incidents whose snapshot changed after `since`, oldest change first (live feeds)."""
    rows = conn.execute(select(*SUMMARY).where(and_(
        incidents.c.tenant == tenant, incidents.c.updated_at > since))
        .order_by(incidents.c.updated_at, incidents.c.incident_id).limit(limit)).all()  # fmt: skip
    return _summaries(rows)


def timeline_seq(conn: Connection, tenant: str, incident_id: str) -> int:
    """The last timeline entry's seq of one incident (-1 with none): the console's
    incident page reloads when it grows, since the entries of a change can reach the
    store in a later batch than the incident's snapshot."""
    t = timeline.c
    q = select(func.max(t.seq)).where(and_(t.incident_id == incident_id, t.tenant == tenant))
    found = conn.execute(q).scalar()
    return -1 if found is None else int(found)


# -- silences and overrides ---------------------------------------------------------------


def silence_state(row: Any, now: datetime) -> str:
    if row.expired_at is not None or row.ends_at <= now:
        return "expired"
    return "pending" if row.starts_at > now else "active"


def list_silences(conn: Connection, tenant: str, now: datetime,
                  state: str | None = None) -> list[Silence]:  # fmt: skip
    s = silences.c
    q = select(silences).where(s.tenant == tenant)
    if state in ("active", "pending"):
        q = q.where(and_(s.expired_at.is_(None), s.ends_at > now))
    elif state == "expired":
        q = q.where(or_(s.expired_at.is_not(None), s.ends_at <= now))
    out = []
    for r in conn.execute(q.order_by(s.created_at.desc(), s.silence_id)):
        st = silence_state(r, now)
        if state is None or st == state:
            out.append(_silence(r, st))
    return out


def get_silence(conn: Connection, tenant: str, silence_id: str, now: datetime) -> Silence | None:
    r = conn.execute(select(silences).where(and_(silences.c.silence_id == silence_id,
                                                 silences.c.tenant == tenant))).first()  # fmt: skip
    return _silence(r, silence_state(r, now)) if r is not None else None


def _silence(r: Any, state: str) -> Silence:
    return Silence(
        silence_id=r.silence_id, state=state,
        matchers=[Matcher.model_validate(m) for m in r.matchers], starts_at=r.starts_at,
        ends_at=r.ends_at, author=r.author, comment=r.comment,
        weekly=Weekly.model_validate(r.weekly) if r.weekly else None,
        created_at=r.created_at, expired_at=r.expired_at, expired_by=r.expired_by,
    )  # fmt: skip


def live_overrides(conn: Connection, tenant: str, now: datetime) -> list[dict[str, Any]]:
    o = overrides.c
    rows = conn.execute(select(overrides).where(and_(o.tenant == tenant, o.ends_at > now))
                        .order_by(o.starts_at)).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


# -- reports --------------------------------------------------------------------------------


def report(conn: Connection, tenant: str, since: datetime, until: datetime, group_by: str,
           sla: dict[str, timedelta]) -> Report:  # fmt: skip
    c = incidents.c
    span = and_(c.tenant == tenant, c.opened_at >= since, c.opened_at < until)
    rows = conn.execute(select(c.incident_id, c[group_by], c.priority, c.opened_at,
                               c.acknowledged_at, c.resolved_at).where(span)).all()  # fmt: skip
    facts = [Fact(r.incident_id, str(r[1] or "(none)"), r.priority, r.opened_at,
                  r.acknowledged_at, r.resolved_at) for r in rows]  # fmt: skip
    ms = conn.execute(select(members.c.rule, members.c.labels, members.c.repeats)
                      .join(incidents, incidents.c.incident_id == members.c.incident_id)
                      .where(span)).all()  # fmt: skip
    triples: Sequence[tuple[str, dict[str, str], int]] = [(m.rule, m.labels, m.repeats)
                                                          for m in ms]  # fmt: skip
    return Report(
        since=since, until=until, group_by=group_by, total=stats("total", facts, sla, until),
        groups=grouped(facts, sla, until),
        ack_sla_s={p: t.total_seconds() for p, t in sorted(sla.items())},
        top_alerts=top_alerts(triples), noisiest_rules=noisiest_rules(triples),
    )  # fmt: skip


def store_freshness(conn: Connection) -> tuple[datetime, int] | None:
    """When a projector last heard from Kafka, and how many records it had left to
    project then (the newest word of any projector); None before any has."""
    row = conn.execute(select(projector_seen.c.seen_at, projector_seen.c.behind)
                       .order_by(projector_seen.c.seen_at.desc()).limit(1)).first()  # fmt: skip
    return None if row is None else (row[0], int(row[1]))


def ping(conn: Connection) -> None:
    conn.execute(select(func.count()).select_from(select(1).subquery()))


def sla_months(conn: Connection, tenants: Sequence[str], since: datetime, until: datetime,
               slas: dict[str, dict[str, timedelta]]) -> list[SlaMonth]:  # fmt: skip
    """MTTA, MTTR and acknowledgement-SLA breaches per tenant and month (UTC) of the
    incidents opened in [since, until), each against its own tenant's SLA (``slas``)."""
    c = incidents.c
    rows = conn.execute(select(c.tenant, c.incident_id, c.priority, c.opened_at,
                               c.acknowledged_at, c.resolved_at)
                        .where(and_(c.tenant.in_(list(tenants)), c.opened_at >= since,
                                    c.opened_at < until))).all()  # fmt: skip
    by: dict[tuple[str, str], list[Fact]] = {}
    for r in rows:
        opened = _utc(r.opened_at)
        by.setdefault((r.tenant, f"{opened:%Y-%m}"), []).append(
            Fact(r.incident_id, r.tenant, r.priority, opened, _utc(r.acknowledged_at),
                 _utc(r.resolved_at)))  # fmt: skip
    out = []
    for (tenant, month), facts in sorted(by.items()):
        s = stats(tenant, facts, slas.get(tenant, {}), until)
        measured = sum(1 for f in facts if f.priority in slas.get(tenant, {}))
        out.append(SlaMonth(
            tenant=tenant, month=month, incidents=s.incidents, acknowledged=s.acknowledged,
            resolved=s.resolved, mtta_s=s.mtta_s, mttr_s=s.mttr_s, mttr_p90_s=s.mttr_p90_s,
            ack_sla_breaches=s.ack_sla_breaches,
            ack_sla_met_pct=round(100 * (measured - s.ack_sla_breaches) / measured, 2)
            if measured else None))  # fmt: skip
    return out


def _utc(at: datetime | None) -> Any:
    """SQLite hands back naive datetimes (stored in UTC)."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)
