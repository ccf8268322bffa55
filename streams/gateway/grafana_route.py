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

from connectors.sources.batches import BodyError, inflate
from connectors.sources.grafana import decode_grafana_items
from schemas import Alert, DecodeError
from streams.gateway.alertmanager_api import bearer_or_basic
from streams.gateway.records import Outcome, RecordMaker
from streams.gateway.responses import json_response

if TYPE_CHECKING:
    from streams.gateway.app import Gateway

ROUTE = "http:/v1/grafana"


def add_routes(gw: Gateway, app: web.Application) -> None:
    auth = partial(bearer_or_basic, gw)
    app.router.add_post("/v1/grafana", gw.route("grafana", partial(_grafana, gw), auth=auth))


async def _grafana(gw: Gateway, request: web.Request) -> web.Response:
    raw = await request.read()
    now = datetime.fromtimestamp(gw.clock(), UTC)
    out = await gw.decode(partial(_decode, gw, raw, request.headers.get("Content-Encoding"), now))
    await gw.write(out.records)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)


def _key(a: Alert) -> bytes:
    return a.fingerprint.encode()


def _decode(gw: Gateway, raw: bytes, encoding: str | None, now: datetime) -> Outcome:
    out = Outcome("grafana")
    maker = RecordMaker(out, gw.catalog.name("alerts"), _key)
    body = raw
    try:
        body = inflate(raw, encoding)
        alerts, errors = decode_grafana_items(body, now)
    except (BodyError, DecodeError) as exc:
        out.refuse(str(exc), exc.reason)
    else:
        for e in errors:
            out.reject(e.position, e.message)
        for position, alert in alerts:
            maker.add(position, alert)
    if out.refused is not None or out.rejected:
        out.records.append(gw.letter(ROUTE, body, out.reason, out.error_text()))
    return out
