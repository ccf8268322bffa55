"""The console's incident pages: login, the live list, one incident and its actions.

Reads go through the store's query functions and actions through the API's command path
(`streams.api.incidents.perform`), as the session's user and role: the console can do
nothing the same user's API token could not."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from schemas.api import EmptyBody, IncidentQuery, NoteBody
from streams.api.app import CONSOLE, PRINCIPAL, Api, ApiError
from streams.api.incidents import perform, stream_changes, user_names
from streams.console.session import COOKIE
from streams.console.web import SESSIONS, action, add, failed, render, session
from streams.store import queries

log = structlog.get_logger(__name__)
STATUSES = ("triggered", "acknowledged", "resolved")
# behind a proxy that ends TLS the worker sees plain HTTP: the operator says so
SECURE = os.environ.get("TOCSIN_CONSOLE_SECURE_COOKIE", "").lower() in ("1", "true", "yes")
# the live list asks for changes from a little before it was drawn: a change is keyed on the
# incident's time, which can precede its arrival in the store (a row sent twice is drawn once)
LIVE_OVERLAP = timedelta(seconds=60)
# the console's buttons: what they send and how a responder reads it
BUTTONS = {"ack": "Acknowledge", "resolve": "Resolve", "note": "Add note"}


def add_routes(api: Api, app: web.Application) -> None:
    async def login_form(request: web.Request) -> web.Response:
        return render(request, "login.html", error=None)

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = form.get("token")
        made = request.app[SESSIONS].login(token) if isinstance(token, str) else None
        if made is None:
            log.warning("console_login_refused", remote=request.remote)
            return render(request, "login.html", status=401, error="unknown API token")
        cookie, s = made
        log.info("console_login", user=s.principal.user, role=s.principal.role,
                 remote=request.remote)  # fmt: skip
        resp = _see(f"{CONSOLE}/")
        resp.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path=CONSOLE,
                        max_age=int(request.app[SESSIONS].ttl),
                        secure=request.secure or SECURE)  # fmt: skip
        return resp

    async def logout(request: web.Request) -> web.StreamResponse:
        await action(request)
        request.app[SESSIONS].logout(request.cookies.get(COOKIE))
        resp = _see(f"{CONSOLE}/login")
        resp.del_cookie(COOKIE, path=CONSOLE)
        return resp

    async def incidents(request: web.Request) -> web.Response:
        s = session(request)
        status = [v for v in request.query.getall("status", []) if v in STATUSES]
        try:
            q = IncidentQuery(status=status, q=request.query.get("q", ""),
                              limit=200)  # fmt: skip
        except ValidationError as exc:
            return failed(request, 400, str(exc.errors(include_url=False)[0]["msg"]))
        page = await api.db(queries.list_incidents, s.principal.tenant, q)
        since = api.clock() - LIVE_OVERLAP
        return render(request, "incidents.html", items=page.items, chosen=status, since=since,
                      statuses=STATUSES, q=q.q)  # fmt: skip

    async def incident(request: web.Request) -> web.Response:
        s = session(request)
        iid = request.match_info["incident_id"]
        inc = await api.db(queries.incident_detail, s.principal.tenant, iid)
        if inc is None:
            return failed(request, 404, f"no incident {iid!r}")
        return render(request, "incident.html", inc=inc, names=user_names(api, s.principal.tenant),
                      sent=request.query.get("sent"), buttons=BUTTONS)  # fmt: skip

    async def act(request: web.Request) -> web.StreamResponse:
        _, form = await action(request)
        iid = request.match_info["incident_id"]
        name = request.match_info["action"]
        if name not in BUTTONS:
            return failed(request, 404, f"no action {name!r}")
        try:
            body: Any = NoteBody(text=form.get("text", "")) if name == "note" else EmptyBody()
        except ValidationError:
            return failed(request, 400, "text: a note needs some text")
        try:
            await perform(api, request, iid, name, body)
        except ApiError as exc:
            return failed(request, exc.status, exc.error)
        raise web.HTTPSeeOther(f"{CONSOLE}/incidents/{iid}?sent={name}")

    async def live(request: web.Request) -> web.StreamResponse:
        s = session(request)
        # the page says from when: the feed keys on the incidents' own times, and a change
        # made before the browser connected may reach the store after it did
        since = request.query.get("since")
        if since and "Last-Event-ID" not in request.headers:
            try:
                datetime.fromisoformat(since)
            except ValueError:
                return failed(request, 400, "since: not an instant")
            request = request.clone(headers={**request.headers, "Last-Event-ID": since})
            request[PRINCIPAL] = s.principal
        # an incident's page also follows its timeline, whose entries can land later
        watched = request.query.get("incident")
        try:
            seq = int(request.query.get("seq", "-1"))
        except ValueError:
            return failed(request, 400, "seq: not a number")
        return await stream_changes(api, request, (watched, seq) if watched else None)

    add(app, "GET", f"{CONSOLE}/login", login_form)
    add(app, "POST", f"{CONSOLE}/login", login)
    add(app, "POST", f"{CONSOLE}/logout", logout)
    add(app, "GET", CONSOLE, lambda _: _redirect())
    add(app, "GET", f"{CONSOLE}/", incidents)
    add(app, "GET", f"{CONSOLE}/live", live)
    add(app, "GET", f"{CONSOLE}/incidents/{{incident_id}}", incident)
    add(app, "POST", f"{CONSOLE}/incidents/{{incident_id}}/{{action}}", act)


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _redirect() -> web.Response:
    raise web.HTTPSeeOther(f"{CONSOLE}/")
