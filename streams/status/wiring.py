"""Status pages on the API's application: the pages, the responders' routes, the
webhook delivery loop (started and stopped with the application)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from aiohttp import web

from schemas.status import StatusConfig
from streams.api.app import Api
from streams.status import api_routes, console, routes
from streams.status.delivery import Deliverer

DELIVERER = web.AppKey("status_deliverer", Deliverer)


def add_status(api: Api, app: web.Application, pages: Mapping[str, StatusConfig],
               deliver_every: float = 1.0) -> None:  # fmt: skip
    routes.add_routes(api, app, pages)
    api_routes.add_routes(api, app)
    console.add_routes(api, app)
    deliverer = Deliverer(api.engine, app[routes.PAGES], api.clock, deliver_every)
    app[DELIVERER] = deliverer
    tasks: list[asyncio.Task[None]] = []

    async def start(_: web.Application) -> None:
        tasks.append(asyncio.get_running_loop().create_task(deliverer.run()))

    async def stop(_: web.Application) -> None:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await deliverer.client.aclose()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
