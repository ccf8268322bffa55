"""Mounts the console on the API's application under /console."""

from __future__ import annotations

from aiohttp import web

from streams.api.app import CONSOLE, Api
from streams.console import pages, views
from streams.console.pages import SECURE
from streams.console.session import Sessions
from streams.console.web import API, HERE, SESSIONS, TENANT_COOKIE, TENANTS, action, failed


def add_routes(api: Api, app: web.Application) -> None:
    app[SESSIONS] = Sessions(api.tokens)
    app[API] = api
    app[TENANTS] = tuple(sorted(api.configs))
    pages.add_routes(api, app)
    views.add_routes(api, app)
    app.router.add_post(f"{CONSOLE}/tenant", switch_tenant)
    app.router.add_static(f"{CONSOLE}/static", HERE / "static")


async def switch_tenant(request: web.Request) -> web.StreamResponse:
    """Provider staff choose the tenant the console shows and acts in."""
    s, form = await action(request)
    chosen = form.get("tenant", "")
    if not s.principal.provider:
        return failed(request, 403, f"role {s.principal.role!r} acts in its own tenant only")
    if chosen not in request.app[TENANTS]:
        return failed(request, 404, f"no tenant {chosen[:64]!r}")
    resp = web.Response(status=303, headers={"Location": f"{CONSOLE}/"})
    resp.set_cookie(TENANT_COOKIE, chosen, httponly=True, samesite="Strict", path=CONSOLE,
                    secure=request.secure or SECURE)  # fmt: skip
    return resp
