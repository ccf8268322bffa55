"""Source routes: /v1/metrics, /v1/logs, /v1/alertmanager, /v2/enqueue, /api/v1/write.

Each request is decoded off the event loop (decoding.py) into an Outcome (records.py):
the records to write, the item errors, one dead letter for whatever was refused; then
written in one acknowledged write, then answered. Item by item on every route but
/v2/enqueue (one event per request): the valid items are stored and a 400 names the
others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from streams.gateway.decoding import (
    decode_alertmanager,
    decode_batch,
    decode_pagerduty_event,
    decode_remote_write_body,
)
from streams.gateway.records import TimeBounds
from streams.gateway.responses import json_response, pagerduty_throttled
from streams.gateway.tenancy import tenant_of

if TYPE_CHECKING:
    from streams.gateway.app import Gateway


def add_routes(gw: Gateway, app: web.Application) -> None:
    app.router.add_post("/v1/metrics", gw.route("metrics", lambda r: _batch(gw, r, "metrics")))
    app.router.add_post("/v1/logs", gw.route("logs", lambda r: _batch(gw, r, "logs")))
    app.router.add_post("/v1/alertmanager", gw.route("alertmanager",
                                                     lambda r: _alertmanager(gw, r)))  # fmt: skip
    app.router.add_post("/v2/enqueue", gw.route("pagerduty", lambda r: _pagerduty(gw, r),
                                                auth=gw.pagerduty,
                                                throttled=pagerduty_throttled))  # fmt: skip
    app.router.add_post("/api/v1/write", gw.route("remote_write",
                                                  lambda r: _remote_write(gw, r)))  # fmt: skip


def _now(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), UTC)


def _bounds(gw: Gateway) -> TimeBounds:
    return TimeBounds(_now(gw), gw.max_ahead, gw.max_behind)


async def _batch(gw: Gateway, request: web.Request, topic: str) -> web.Response:
    raw = await request.read()
    work = partial(decode_batch, gw.topics, topic, raw, request.headers.get("Content-Encoding"),
                   request.content_type, _bounds(gw), tenant_of(request))  # fmt: skip
    out = await gw.decode(work, len(raw))
    await gw.write(out.records, request)
    status, doc = out.answer()
    return json_response(status, doc)


async def _alertmanager(gw: Gateway, request: web.Request) -> web.Response:
    """Alertmanager retries 5xx and drops 4xx: the valid alerts of a notification are
    stored even when another is refused (400 names it)."""
    raw = await request.read()
    work = partial(decode_alertmanager, gw.topics, raw, request.headers.get("Content-Encoding"),
                   _now(gw), tenant_of(request))  # fmt: skip
    out = await gw.decode(work, len(raw))
    await gw.write(out.records, request)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)


async def _pagerduty(gw: Gateway, request: web.Request) -> web.Response:
    """PagerDuty's own answers: 202 success, 400 invalid event, 429 throttled.

    The routing key was checked by ``Gateway.pagerduty`` before this runs."""
    raw = await request.read()
    work = partial(decode_pagerduty_event, gw.topics, raw, request.headers.get("Content-Encoding"),
                   _now(gw), tenant_of(request))  # fmt: skip
    out, event = await gw.decode(work, len(raw))
    await gw.write(out.records, request)
    if out.refused is not None or out.rejected:
        message = out.refused[1] if out.refused is not None else out.errors[0][1]
        status = out.refused[0] if out.refused is not None else 400
        return json_response(status, {"status": "invalid event",
                                      "message": "Event object is invalid",
                                      "errors": message.split("; ")})  # fmt: skip
    return json_response(202, {"status": "success", "message": "Event processed",
                               "dedup_key": event})  # fmt: skip


async def _remote_write(gw: Gateway, request: web.Request) -> web.Response:
    """Prometheus retries 5xx/429 and drops on other 4xx, so a 400 means 'fix the sender';
    the valid series of a request are stored before it is answered (as Mimir does)."""
    raw = await request.read()
    work = partial(decode_remote_write_body, gw.topics, raw, _bounds(gw), tenant_of(request))
    out = await gw.decode(work, len(raw))
    if out.skipped:
        gw.metrics.skipped.labels(route="remote_write", reason="non_finite").inc(out.skipped)
    await gw.write(out.records, request)
    status, doc = out.answer()
    if status == 202:
        return web.Response(status=204)
    return json_response(status, doc)
