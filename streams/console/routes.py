"""Mounts the console on the API's application under /console."""

from __future__ import annotations

from aiohttp import web

from streams.api.app import CONSOLE, Api
from streams.console import pages, views
from streams.console.session import Sessions
from streams.console.web import HERE, SESSIONS


def add_routes(api: Api, app: web.Application) -> None:
    app[SESSIONS] = Sessions(api.tokens)
    pages.add_routes(api, app)
    views.add_routes(api, app)
    app.router.add_static(f"{CONSOLE}/static", HERE / "static")
