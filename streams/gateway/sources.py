"""Source routes: /v1/metrics, /v1/logs, /v1/alertmanager, /v2/enqueue, /api/v1/write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.sources.alertmanager import decode_alertmanager
from connectors.sources.batches import BodyError, decode_batch, inflate
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import decode_remote_write
from schemas import Alert, DecodeError, LogRecord, MetricSample, encode
from streams.gateway.app import json_response, pagerduty_throttled, unauthorized
from streams.gateway.writer import Record

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


def _metric_key(m: MetricSample) -> bytes:
    return m.series_key().encode()


def _log_key(r: LogRecord) -> bytes:
    return (r.labels.get("service") or r.source).encode()


_BATCHES: dict[str, tuple[type[Any], Callable[[Any], bytes]]] = {
    "metrics": (MetricSample, _metric_key),
    "logs": (LogRecord, _log_key),
}


async def _batch(gw: Gateway, request: web.Request, topic: str) -> web.Response:
    if not gw.authorized(request):
        return unauthorized()
    model, key = _BATCHES[topic]
    raw = await request.read()
    source = f"http:/v1/{topic}"
    try:
        body = inflate(raw, request.headers.get("Content-Encoding"))
        good, bad = decode_batch(model, body, request.content_type)
    except BodyError as exc:
        await gw.dead_letter(source, raw, "invalid_body", str(exc))
        return json_response(400, {"error": str(exc)})
    records: list[Record] = [(gw.catalog.name(topic), key(item), encode(item)) for item in good]
    # one write, one acknowledgement: the good items and the bad items' dead letters
    records += [gw.letter(source, e.raw, "validation", f"item {e.position}: {e.message}")
                for e in bad]  # fmt: skip
    await gw.write(records)
    if bad:
        errors = [{"position": e.position, "error": e.message} for e in bad[:100]]
        return json_response(400, {"accepted": len(good), "rejected": len(bad),
                                   "errors": errors})  # fmt: skip
    return json_response(202, {"accepted": len(good)})


async def _alerts(gw: Gateway, alerts: list[Alert]) -> None:
    topic = gw.catalog.name("alerts")
    await gw.write([(topic, a.fingerprint.encode(), encode(a)) for a in alerts])


async def _alertmanager(gw: Gateway, request: web.Request) -> web.Response:
    if not gw.authorized(request):
        return unauthorized()
    raw = await request.read()
    try:
        body = inflate(raw, request.headers.get("Content-Encoding"))
        alerts = decode_alertmanager(body, datetime.now(UTC))
    except (BodyError, DecodeError) as exc:
        await gw.dead_letter("http:/v1/alertmanager", raw, _reason(exc), str(exc))
        return json_response(400, {"error": str(exc)})
    await _alerts(gw, alerts)
    return json_response(200, {"accepted": len(alerts)})


async def _pagerduty(gw: Gateway, request: web.Request) -> web.Response:
    """PagerDuty's own answers: 202 success, 400 invalid event, 429 throttled.

    The routing key was checked by ``Gateway.pagerduty`` before this runs."""
    raw = await request.read()
    try:
        body = inflate(raw, request.headers.get("Content-Encoding"))
        event, alert = decode_pagerduty(body, datetime.now(UTC))
    except (BodyError, DecodeError) as exc:
        await gw.dead_letter("http:/v2/enqueue", raw, _reason(exc), str(exc))
        return json_response(400, {"status": "invalid event",
                                   "message": "Event object is invalid",
                                   "errors": str(exc).split("; ")})  # fmt: skip
    await _alerts(gw, [alert])
    return json_response(202, {"status": "success", "message": "Event processed",
                               "dedup_key": event.dedup_key})  # fmt: skip


async def _remote_write(gw: Gateway, request: web.Request) -> web.Response:
    """Prometheus retries 5xx/429 and drops on other 4xx, so a 400 means 'fix the sender'."""
    if not gw.authorized(request):
        return unauthorized()
    raw = await request.read()
    try:
        batch = decode_remote_write(raw)
    except DecodeError as exc:
        await gw.dead_letter("http:/api/v1/write", raw, exc.reason, str(exc))
        return json_response(400, {"error": str(exc)})
    if batch.skipped:
        gw.metrics.skipped.labels(route="remote_write", reason="non_finite").inc(batch.skipped)
    topic = gw.catalog.name("metrics")
    await gw.write([(topic, _metric_key(s), encode(s)) for s in batch.samples])
    return web.Response(status=204)


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, DecodeError) else "invalid_body"
