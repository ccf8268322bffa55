"""The API's aiohttp application: the plumbing of app.py plus every route module."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from schemas.status import StatusConfig
from streams.api import incidents, openapi, people, reports
from streams.api.app import TENANT_PREFIX, Api
from streams.console import routes as console
from streams.status.wiring import add_status


def application(api: Api, status_pages: Mapping[str, StatusConfig] | None = None,
                deliver_every: float = 1.0) -> web.Application:  # fmt: skip
    app = api.base_app()
    # before the incidents' `/{action}` routes: `/updates` is the status pages'
    add_status(api, app, status_pages or {}, deliver_every)
    incidents.add_routes(api, app)
    people.add_routes(api, app)
    reports.add_routes(api, app)
    add_tenant_twins(app)
    app.router.add_get("/api/v1/openapi.json", openapi.serve)
    console.add_routes(api, app)
    return app


def add_tenant_twins(app: web.Application) -> None:
    """``/api/v1/tenants/{tenant}/X`` for every ``/api/v1/X``: the same handler, acting in
    the tenant the path names (the provider role only; see ``Api.scoped``)."""
    for route in list(app.router.routes()):
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path.startswith("/api/v1/"):
            continue
        app.router.add_route(route.method, TENANT_PREFIX + path.removeprefix("/api/v1"),
                             route.handler)  # fmt: skip
