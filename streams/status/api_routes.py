"""The responders' side of status pages in the REST API: post an update about an incident
(`POST /api/v1/incidents/{id}/updates`), override a component's state until cleared
(`PUT`/`DELETE /api/v1/status/components/{component}/override`), schedule maintenance
(`POST /api/v1/status/maintenance`, `DELETE .../{id}` to call it off), and manage a
page's webhook subscribers (`/api/v1/status/pages/{page}/subscribers`).

Updates, overrides and maintenance are Commands on Kafka (action `status`), answered 202
once Kafka acknowledged them; the projector writes them to the store the pages read.
Everything is checked first, so a bad request writes nothing: an unknown audience or
component is a 400 naming the field, another tenant's or an unknown incident a 404, an
update for a resolved incident a 409."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas.api import Accepted
from schemas.status import (
    CancelSpec,
    MaintenanceBody,
    MaintenanceSpec,
    OverrideSpec,
    StateOverrideBody,
    StatusChange,
    StatusConfig,
    SubscriberBody,
    UpdateBody,
    UpdateSpec,
)
from streams.api.app import Api, ApiError, json, problem
from streams.status import store, subscribers
from streams.status.routes import PAGES


def status_of(request: web.Request, tenant: str) -> StatusConfig:
    status: StatusConfig | None = request.app[PAGES].get(tenant)
    if status is None:
        raise ApiError(404, f"tenant {tenant!r} has no status pages (no status.yaml)")
    return status


def _known(status: StatusConfig, ids: list[str], field: str) -> None:
    have = {c.id for c in status.components}
    for i, cid in enumerate(ids):
        if cid not in have:
            raise ApiError(400, f"body.{field}.{i}: unknown component {cid!r} (known: "
                           f"{', '.join(sorted(have)) or 'none'})", f"{field}.{i}")  # fmt: skip


async def post_update(api: Api, request: web.Request, iid: str, body: UpdateBody) -> Accepted:
    """The update on Kafka, once the incident is known to be the tenant's and open (the
    API, the console and tests act here)."""
    who = api.principal(request)
    status = status_of(request, who.tenant)
    _known(status, body.components, "components")
    found = await api.db(store.incident_for_update, who.tenant, iid)
    if found is None:
        raise ApiError(404, f"no incident {iid!r}")
    if found[0] == "resolved":
        raise ApiError(409, f"incident {iid} is resolved: its story on the status pages is "
                       "closed, an update would change nothing readers see")  # fmt: skip
    spec = _spec(UpdateSpec, incident_id=iid, author=who.user, **body.model_dump())
    cmd = api.command(request, action="status",
                      status=StatusChange(kind="update", update=spec))  # fmt: skip
    await api.send(cmd, iid)
    return Accepted(command_id=cmd.event_id, incident_id=iid)


async def send_override(api: Api, request: web.Request, cid: str,
                        body: StateOverrideBody | None) -> str:  # fmt: skip
    """Set component `cid`'s state until cleared (`body` None clears it); the command id."""
    who = api.principal(request)
    status = status_of(request, who.tenant)
    if cid not in {c.id for c in status.components}:
        raise ApiError(404, f"no component {cid!r}")
    spec = OverrideSpec(component=cid, state=body.state if body else None,
                        reason=body.reason if body else "", author=who.user)  # fmt: skip
    cmd = api.command(request, action="status",
                      status=StatusChange(kind="override", override=spec))  # fmt: skip
    await api.send(cmd, f"{who.tenant}/{cid}")
    return cmd.event_id


def _spec(model: Any, **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise problem(exc, "body") from None


def add_routes(api: Api, app: web.Application) -> None:
    async def update(request: web.Request) -> web.Response:
        body = await api.body(request, UpdateBody)
        return json(202, await post_update(api, request, request.match_info["incident_id"],
                                           body))  # fmt: skip

    async def override(request: web.Request) -> web.Response:
        body = await api.body(request, StateOverrideBody) if request.method == "PUT" else None
        cid = request.match_info["component"]
        command_id = await send_override(api, request, cid, body)
        return json(202, {"command_id": command_id, "component": cid,
                          "state": body.state if body else None})  # fmt: skip

    async def maintenance(request: web.Request) -> web.Response:
        who = api.principal(request)
        status = status_of(request, who.tenant)
        body = await api.body(request, MaintenanceBody)
        _known(status, body.components, "components")
        spec = _spec(MaintenanceSpec, author=who.user, **body.model_dump())
        cmd = api.command(request, action="status",
                          status=StatusChange(kind="maintenance", maintenance=spec))  # fmt: skip
        await api.send(cmd, f"{who.tenant}/maintenance")
        return json(202, {"command_id": cmd.event_id, "maintenance_id": cmd.event_id})

    async def cancel(request: web.Request) -> web.Response:
        who = api.principal(request)
        status_of(request, who.tenant)
        mid = request.match_info["maintenance_id"]
        if not await api.db(store.maintenance_exists, who.tenant, mid):
            raise ApiError(404, f"no maintenance {mid!r}")
        spec = CancelSpec(maintenance_id=mid, author=who.user)
        cmd = api.command(request, action="status",
                          status=StatusChange(kind="cancel", cancel=spec))  # fmt: skip
        await api.send(cmd, f"{who.tenant}/maintenance")
        return json(202, {"command_id": cmd.event_id, "maintenance_id": mid})

    def page_of(request: web.Request) -> tuple[str, str]:
        who = api.principal(request)
        pid = request.match_info["page"]
        if status_of(request, who.tenant).page(pid) is None:
            raise ApiError(404, f"no status page {pid!r}")
        return who.tenant, pid

    async def subscribe(request: web.Request) -> web.Response:
        tenant, pid = page_of(request)
        if not api.principal(request).may("responder"):
            raise ApiError(403, "subscribers are managed by responders and admins")
        body = await api.body(request, SubscriberBody)
        error = subscribers.url_problem(body.url)
        if error:
            raise ApiError(400, f"body.url: {error}", "url")
        made = await api.db(subscribers.add, tenant, pid, body.url, api.clock())
        return json(201, made)

    async def listed(request: web.Request) -> web.Response:
        tenant, pid = page_of(request)
        return json(200, {"items": [s.model_dump(mode="json") for s in
                                    await api.db(subscribers.listed, tenant, pid)]})  # fmt: skip

    async def unsubscribe(request: web.Request) -> web.Response:
        tenant, pid = page_of(request)
        if not api.principal(request).may("responder"):
            raise ApiError(403, "subscribers are managed by responders and admins")
        sid = request.match_info["subscriber_id"]
        if not await api.db(subscribers.remove, tenant, pid, sid, api.clock()):
            raise ApiError(404, f"no subscriber {sid!r}")
        return web.Response(status=204)

    app.router.add_post("/api/v1/incidents/{incident_id}/updates", update)
    app.router.add_put("/api/v1/status/components/{component}/override", override)
    app.router.add_delete("/api/v1/status/components/{component}/override", override)
    app.router.add_post("/api/v1/status/maintenance", maintenance)
    app.router.add_delete("/api/v1/status/maintenance/{maintenance_id}", cancel)
    subs = "/api/v1/status/pages/{page}/subscribers"
    app.router.add_post(subs, subscribe)
    app.router.add_get(subs, listed)
    app.router.add_delete(subs + "/{subscriber_id}", unsubscribe)
