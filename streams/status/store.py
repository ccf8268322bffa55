"""What a status page reads from the store, and the page it makes (blocking: the API runs
these on a store thread). Filtered by tenant like every query of the store.

A page tells only what its audience may read: the updates meant for it, the components'
display names, and the public title a responder gave an incident. The incident's own
title is shown on internal pages only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from processors.status import Affecting, Window, affects, first_day, history, state_of, worst
from schemas.status import (
    ComponentHistory,
    ComponentState,
    ComponentView,
    IncidentStory,
    MaintenanceView,
    Page,
    PageView,
    StatusConfig,
    UpdateView,
)
from streams.store.status_tables import status_maintenance, status_overrides, status_updates
from streams.store.tables import incidents

DAYS = 90
# how long finished maintenance stays on a page
MAINTENANCE_SHOWN = timedelta(days=7)
# the incidents of 90 days a page reads at most (beyond, the oldest drop out of history)
MAX_INCIDENTS = 100_000
# the past incidents a page tells, newest first
PAST_SHOWN = 50


def _since(now: datetime) -> datetime:
    return datetime.combine(first_day(now, DAYS), time(0), UTC)


def page_view(conn: Connection, tenant: str, status: StatusConfig, page: Page,
              now: datetime) -> PageView:  # fmt: skip
    shown = status.shown(page)
    since = _since(now)
    updates = _updates(conn, tenant, since)
    named: dict[str, set[str]] = {}
    for u in updates:
        named.setdefault(u["incident_id"], set()).update(u["components"])
    services = sorted({s for c in shown for s in c.services})
    rows = _incidents(conn, tenant, services, sorted(named), since)
    none: frozenset[str] = frozenset()
    named_sets = {k: frozenset(v) for k, v in named.items()}
    affecting = [Affecting(iid, service, labels or {}, prio, opened, resolved,
                           named_sets.get(iid, none))
                 for iid, service, labels, prio, opened, resolved, _ in rows]  # fmt: skip
    windows, maint = _maintenance(conn, tenant, page, now)
    overrides = _overrides(conn, tenant)
    by_priority: dict[str, ComponentState] = {str(k): v for k, v in status.priority_states.items()}
    # each component looks only at the incidents of its services and those named for it
    by_service: dict[str | None, list[Affecting]] = {}
    for inc in affecting:
        by_service.setdefault(inc.service, []).append(inc)
    comps, hist = [], []
    for c in shown:
        mine = [i for sid in c.services for i in by_service.get(sid, ())]
        mine += [i for i in affecting if c.id in i.named and i.service not in c.services]
        comps.append(ComponentView(
            id=c.id, name=c.name, group=c.group, description=c.description,
            state=state_of(c, mine, windows, overrides, by_priority, now),
            overridden=c.id in overrides))  # fmt: skip
        up, days = history(c, mine, by_priority, now, DAYS)
        hist.append(ComponentHistory(id=c.id, name=c.name, uptime=up, days=days))
    visible: dict[str, list[UpdateView]] = {}
    titles: dict[str, str] = {}
    for u in updates:
        if page.audience in u["audiences"]:
            visible.setdefault(u["incident_id"], []).append(UpdateView(
                update_id=u["update_id"], status=u["status"], message=u["message"],
                at=u["at"]))  # fmt: skip
            if u["title"]:
                titles[u["incident_id"]] = u["title"]
    active: list[IncidentStory] = []
    past: list[IncidentStory] = []
    for inc, r in zip(affecting, rows, strict=True):
        is_open = inc.resolved_at is None
        if not is_open and inc.incident_id not in visible:
            continue  # a past incident is told only through what was written for readers
        hit = [c.name for c in shown if affects(c, inc)]
        if not hit:
            continue
        ups = sorted(visible.get(inc.incident_id, []), key=lambda v: v.at, reverse=True)
        generic = f"Service disruption: {', '.join(hit)}"
        title = titles.get(inc.incident_id) or (r.title if page.audience == "internal" else generic)
        story = IncidentStory(incident_id=inc.incident_id, title=title,
                              status="open" if is_open else "resolved", opened_at=inc.opened_at,
                              resolved_at=inc.resolved_at, components=hit, updates=ups)  # fmt: skip
        (active if is_open else past).append(story)
    active.sort(key=lambda s: s.opened_at, reverse=True)
    past.sort(key=lambda s: s.resolved_at or s.opened_at, reverse=True)
    past = past[:PAST_SHOWN]
    names = {c.id: c.name for c in shown}
    return PageView(
        tenant=tenant, page=page.id, audience=page.audience, title=page.title,
        state=worst(c.state for c in comps), generated_at=now, components=comps,
        active=active,
        maintenance=[m.model_copy(update={"components": [names[c] for c in m.components
                                                         if c in names]})
                     for m in maint if any(c in names for c in m.components)],
        history=hist, past=past,
    )  # fmt: skip


def _updates(conn: Connection, tenant: str, since: datetime) -> list[dict[str, Any]]:
    u = status_updates.c
    rows = conn.execute(select(status_updates).where(and_(u.tenant == tenant, u.at >= since))
                        .order_by(u.at, u.update_id)).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


def _incidents(conn: Connection, tenant: str, services: list[str], ids: list[str],
               since: datetime) -> list[Any]:  # fmt: skip
    c = incidents.c
    which = [c.service.in_(services)] if services else []
    if ids:
        which.append(c.incident_id.in_(ids))
    if not which:
        return []
    q = (select(c.incident_id, c.service, c.labels, c.priority, c.opened_at, c.resolved_at,
                c.title)
         .where(and_(c.tenant == tenant, or_(*which),
                     or_(c.resolved_at.is_(None), c.resolved_at >= since)))
         .order_by(c.opened_at.desc()).limit(MAX_INCIDENTS))  # fmt: skip
    return list(conn.execute(q).all())


def _overrides(conn: Connection, tenant: str) -> dict[str, ComponentState]:
    o = status_overrides.c
    return {r.component: r.state for r in conn.execute(
        select(o.component, o.state).where(o.tenant == tenant))}  # fmt: skip


def _maintenance(conn: Connection, tenant: str, page: Page,
                 now: datetime) -> tuple[list[Window], list[MaintenanceView]]:  # fmt: skip
    m = status_maintenance.c
    rows = conn.execute(
        select(status_maintenance)
        .where(and_(m.tenant == tenant, m.ends_at >= now - MAINTENANCE_SHOWN))
        .order_by(m.starts_at)
    ).all()
    windows = [Window(frozenset(r.components), r.starts_at, r.ends_at) for r in rows]
    views = []
    for r in rows:
        if page.audience not in r.audiences:
            continue
        state = ("scheduled" if now < r.starts_at else
                 "in_progress" if now < r.ends_at else "completed")  # fmt: skip
        views.append(
            MaintenanceView(
                maintenance_id=r.maintenance_id,
                title=r.title,
                message=r.message,
                components=list(r.components),
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                state=state,
            )
        )
    return windows, views


def incident_for_update(conn: Connection, tenant: str, incident_id: str) -> tuple[str, str] | None:
    """(status, service) of the tenant's incident, or None when it has no such incident."""
    c = incidents.c
    row = conn.execute(select(c.status, c.service).where(and_(
        c.incident_id == incident_id, c.tenant == tenant))).first()  # fmt: skip
    return (row.status, row.service or "") if row is not None else None


def states_by_component(view: PageView) -> Mapping[str, ComponentState]:
    return {c.id: c.state for c in view.components}


def maintenance_exists(conn: Connection, tenant: str, maintenance_id: str) -> bool:
    m = status_maintenance.c
    return conn.execute(select(m.maintenance_id).where(and_(
        m.maintenance_id == maintenance_id, m.tenant == tenant))).first() is not None  # fmt: skip
