"""`POST /v1/grafana`: Grafana-managed alerting's webhook contact point.

Answered like /v1/alertmanager (Grafana, like Alertmanager, does not retry a 4xx): the
valid alerts of a notification are stored and a 400 names the others; the notification
goes to `deadletter` once when anything of it was refused. Authenticated by a bearer
token or basic auth whose password is a token (a contact point sets either).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.sources.grafana import decode_grafana_items
from streams.gateway.alertmanager_api import bearer_or_basic
from streams.gateway.decoding import decode_alert_items
from streams.gateway.responses import json_response
from streams.gateway.tenancy import tenant_of

if TYPE_CHECKING:
    from streams.gateway.app import Gateway


def add_routes(gw: Gateway, app: web.Application) -> None:
    auth = partial(bearer_or_basic, gw)
    app.router.add_post("/v1/grafana", gw.route("grafana", partial(_grafana, gw), auth=auth))


async def _grafana(gw: Gateway, request: web.Request) -> web.Response:
    raw = await request.read()
    now = datetime.fromtimestamp(gw.clock(), UTC)
    out, _ = await gw.decode(partial(decode_alert_items, gw.topics, "grafana", "/v1/grafana",
                                     decode_grafana_items, raw,
                                     request.headers.get("Content-Encoding"), now,
                                     tenant_of(request)))  # fmt: skip
    await gw.write(out.records, request)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)
