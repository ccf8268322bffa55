"""The console's status page: the tenant's pages, a form to post an update about an open
incident (choosing its audiences) and to set or clear a component's state. Actions go
through the same checks and Commands as the API, as the session's user."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from schemas.api import IncidentQuery
from schemas.status import AUDIENCES, STATE_NAMES, StateOverrideBody, StatusConfig, UpdateBody
from streams.api.app import CONSOLE, Api, ApiError, problem
from streams.console.web import SESSION, action, add, render, session
from streams.status import store
from streams.status.api_routes import post_update, send_override
from streams.status.routes import PAGES
from streams.store import queries

UPDATE_STATUSES = ("investigating", "identified", "monitoring", "resolved")


def add_routes(api: Api, app: web.Application) -> None:
    async def overview(request: web.Request, error: str | None = None,
                       status_code: int = 200) -> web.Response:  # fmt: skip
        s = session(request) if error is None else request[SESSION]
        tenant = s.principal.tenant
        status: StatusConfig | None = request.app[PAGES].get(tenant)
        components, open_incidents = [], []
        if status is not None and status.pages:
            # every component, as responders see them (an internal view of the first page)
            page = status.pages[0].model_copy(update={"components": [],
                                                      "audience": "internal"})  # fmt: skip
            view = await api.db(store.page_view, tenant, status, page, api.clock())
            components = view.components
            q = IncidentQuery(status=["triggered", "acknowledged"], limit=200)
            open_incidents = (await api.db(queries.list_incidents, tenant, q)).items
        return render(request, "status.html", status=status_code, tenant=tenant, config=status,
                      components=components, open_incidents=open_incidents, error=error,
                      sent=request.query.get("sent"), audiences=AUDIENCES,
                      update_statuses=UPDATE_STATUSES, state_names=STATE_NAMES)  # fmt: skip

    async def update(request: web.Request) -> web.StreamResponse:
        await action(request)
        form = await request.post()
        try:
            body = UpdateBody.model_validate({
                "status": form.get("status"), "message": form.get("message", ""),
                "title": form.get("title", ""),
                "audiences": [a for a in form.getall("audiences", []) if isinstance(a, str)],
            })  # fmt: skip
            await post_update(api, request, str(form.get("incident_id", "")), body)
        except ValidationError as exc:
            return await overview(request, problem(exc, "form").error, 400)
        except ApiError as exc:
            return await overview(request, exc.error, exc.status)
        raise web.HTTPSeeOther(f"{CONSOLE}/status?sent=Update")

    async def override(request: web.Request) -> web.StreamResponse:
        _, form = await action(request)
        try:
            state = form.get("state") or None
            body = StateOverrideBody.model_validate({"state": state}) if state else None
            await send_override(api, request, request.match_info["component"], body)
        except ValidationError as exc:
            return await overview(request, problem(exc, "form").error, 400)
        except ApiError as exc:
            return await overview(request, exc.error, exc.status)
        raise web.HTTPSeeOther(f"{CONSOLE}/status?sent=State")

    add(app, "GET", f"{CONSOLE}/status", overview)
    add(app, "POST", f"{CONSOLE}/status/updates", update)
    add(app, "POST", f"{CONSOLE}/status/components/{{component}}/override", override)
