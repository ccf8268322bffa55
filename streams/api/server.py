"""The API's aiohttp application: the plumbing of app.py plus every route module."""

from __future__ import annotations

from aiohttp import web

from streams.api import incidents, openapi, people
from streams.api.app import Api
from streams.console import routes as console


def application(api: Api) -> web.Application:
    app = api.base_app()
    incidents.add_routes(api, app)
    people.add_routes(api, app)
    app.router.add_get("/api/v1/openapi.json", openapi.serve)
    console.add_routes(api, app)
    return app
