"""/api/v1/incidents: the list, one incident, its actions, its postmortem draft, and the
live feed of changes (server-sent events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from processors.incidents.reports import postmortem
from schemas.api import (
    Accepted,
    EmptyBody,
    IncidentSummary,
    NoteBody,
    PriorityBody,
    ReassignBody,
    SnoozeBody,
)
from streams.api.app import Api, ApiError, incident_query, json
from streams.store import queries

KEEPALIVE_S = 15.0  # proxies commonly close a stream idle for a minute

# the API's action -> (the Command's action, the body it takes, the Command's fields)
ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "ack": ("ack", EmptyBody),
    "resolve": ("resolve", EmptyBody),
    "escalate": ("escalate", EmptyBody),
    "reassign": ("assign", ReassignBody),
    "note": ("note", NoteBody),
    "snooze": ("snooze", SnoozeBody),
    "priority": ("priority", PriorityBody),
}
# what may still be done to a resolved incident
ON_RESOLVED = frozenset({"note"})


def add_routes(api: Api, app: web.Application) -> None:
    async def list_(request: web.Request) -> web.Response:
        q = incident_query(request)
        who = api.principal(request)
        try:
            page = await api.db(queries.list_incidents, who.tenant, q)
        except queries.BadCursor as exc:
            raise ApiError(400, f"query.{exc}", "cursor") from None
        return json(200, page)

    async def one(request: web.Request) -> web.Response:
        return json(200, await _detail(api, request))

    async def act(request: web.Request) -> web.Response:
        name = request.match_info["action"]
        if name not in ACTIONS:
            raise ApiError(404, f"no action {name!r} (known: {', '.join(ACTIONS)})")
        body = await api.body(request, ACTIONS[name][1])
        return json(202, await perform(api, request, request.match_info["incident_id"], name,
                                       body))  # fmt: skip

    async def draft(request: web.Request) -> web.Response:
        inc = await _detail(api, request)
        if inc.status != "resolved":
            raise ApiError(409, f"incident {inc.incident_id} is {inc.status}: a postmortem "
                           "draft is written once it is resolved")  # fmt: skip
        return web.Response(text=postmortem(inc, user_names(api, api.principal(request).tenant)),
                            content_type="text/markdown")  # fmt: skip

    async def live(request: web.Request) -> web.StreamResponse:
        return await stream_changes(api, request)

    app.router.add_get("/api/v1/incidents", list_)
    app.router.add_get("/api/v1/incidents/live", live)
    app.router.add_get("/api/v1/incidents/{incident_id}", one)
    app.router.add_get("/api/v1/incidents/{incident_id}/postmortem", draft)
    app.router.add_post("/api/v1/incidents/{incident_id}/{action}", act)


async def perform(api: Api, request: web.Request, iid: str, name: str,
                  body: BaseModel) -> Accepted:  # fmt: skip
    """The action `name` on incident `iid` as the request's principal: the Command on
    Kafka, once the incident is known to be open (the API and the console both act here)."""
    action, _ = ACTIONS[name]
    who = api.principal(request)
    cmd = api.command(request, action=action, incident_id=iid, **_fields(body))
    status = await api.db(queries.incident_status, who.tenant, iid)
    if status is None:
        raise ApiError(404, f"no incident {iid!r}")
    if status == "resolved" and name not in ON_RESOLVED:
        raise ApiError(409, f"incident {iid} is resolved: {name} changes nothing "
                       "(a note may still be added)")  # fmt: skip
    await api.send(cmd, iid)
    return Accepted(command_id=cmd.event_id, incident_id=iid)


def user_names(api: Api, tenant: str) -> dict[str, str]:
    """User ids and Slack ids -> display names (of ``tenant``), for drafts and pages."""
    names: dict[str, str] = {}
    for u in api.configs.get(tenant, api.cfg).users:
        names[u.id] = u.name
        if u.slack_id:
            names[u.slack_id] = u.name
    return names


def _fields(body: BaseModel) -> dict[str, Any]:
    if isinstance(body, ReassignBody):
        return {"assignee": body.assignee}
    if isinstance(body, NoteBody):
        return {"text": body.text}
    if isinstance(body, SnoozeBody):
        return {"duration": body.duration}
    if isinstance(body, PriorityBody):
        return {"priority": body.priority}
    return {}


async def _detail(api: Api, request: web.Request) -> Any:
    iid = request.match_info["incident_id"]
    inc = await api.db(queries.incident_detail, api.principal(request).tenant, iid)
    if inc is None:
        raise ApiError(404, f"no incident {iid!r}")
    return inc


class TimelineGrew(BaseModel):
    """A watched incident's timeline has entries past `seq`."""

    incident_id: str
    seq: int


async def changes(api: Api, tenant: str, since: datetime, every: float = 1.0,
                  watch: tuple[str, int] | None = None,
                  ) -> AsyncIterator[IncidentSummary | TimelineGrew | None]:  # fmt: skip
    """Incidents as their snapshots change from `since` on, for as long as the caller
    iterates (the console's live list). A store outage pauses the feed, never ends it;
    None after each round that found nothing, so the caller can tell a gone reader.

    `watch` (an incident and the last timeline seq a page shows) also reports that
    incident's timeline growing: its entries come from the ledger, which the store may
    take in after the snapshot that already counts them."""
    while True:
        try:
            batch = await api.db(queries.changed_since, tenant, since)
            seq = await api.db(queries.timeline_seq, tenant, watch[0]) if watch else -1
        except ApiError:
            batch, seq = [], -1
        for inc in batch:
            since = max(since, inc.updated_at)
            yield inc
        if watch and seq > watch[1]:
            watch = (watch[0], seq)
            yield TimelineGrew(incident_id=watch[0], seq=seq)
        if not batch:
            yield None
        if len(batch) < 200:
            await asyncio.sleep(every)


async def stream_changes(api: Api, request: web.Request,
                         watch: tuple[str, int] | None = None) -> web.StreamResponse:  # fmt: skip
    """Server-sent events: `event: incident` with an IncidentSummary per change, from now
    on (or from the `Last-Event-ID` a reconnecting browser sends: an updated_at), and
    `event: timeline` when a watched incident's timeline grows. A comment line after a
    quiet spell finds out whether the reader is still there: a closed stream ends it."""
    since = api.clock()
    last = request.headers.get("Last-Event-ID")
    if last:
        try:
            since = datetime.fromisoformat(last)
        except ValueError:
            raise ApiError(400, "header.Last-Event-ID: not an instant", "Last-Event-ID") from None
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})  # fmt: skip
    await resp.prepare(request)
    await resp.write(b": live\n\n")
    quiet_since = time.monotonic()
    try:
        async for change in changes(api, api.principal(request).tenant, since, watch=watch):
            if change is None:
                if time.monotonic() - quiet_since < KEEPALIVE_S:
                    continue
                await resp.write(b": still here\n\n")
            elif isinstance(change, TimelineGrew):  # no id: a reconnect resumes by snapshots
                await resp.write(f"event: timeline\ndata: {change.model_dump_json()}\n\n".encode())
            else:
                await resp.write(f"id: {change.updated_at.isoformat()}\nevent: incident\n"
                                 f"data: {change.model_dump_json()}\n\n".encode())  # fmt: skip
            quiet_since = time.monotonic()
    except ConnectionResetError:
        pass  # the reader went away (a page left or closed)
    return resp
