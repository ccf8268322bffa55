"""Source routes: /v1/metrics, /v1/logs, /v1/alertmanager, /v2/enqueue, /api/v1/write.

Each request is decoded on a decoding thread into an Outcome (records.py): the records
to write, the item errors, one dead letter for whatever was refused; then written in
one acknowledged write, then answered. Item by item on every route but /v2/enqueue
(one event per request): the valid items are stored and a 400 names the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.sources.alertmanager import decode_alertmanager_items
from connectors.sources.batches import BodyError, ItemError, inflate, iter_batch
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import decode_remote_write
from schemas import Alert, DecodeError, LogRecord, MetricSample
from streams.gateway.records import Outcome, RecordMaker, TimeBounds
from streams.gateway.responses import json_response, pagerduty_throttled

if TYPE_CHECKING:
    from streams.gateway.app import Gateway

MAX_PAGERDUTY_EVENT = 512 * 1024  # PagerDuty's own bound on an Events API v2 event


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


def _alert_key(a: Alert) -> bytes:
    return a.fingerprint.encode()


_BATCHES: dict[str, tuple[type[Any], Callable[[Any], bytes]]] = {
    "metrics": (MetricSample, _metric_key),
    "logs": (LogRecord, _log_key),
}


def _now(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), UTC)


def _bounds(gw: Gateway) -> TimeBounds:
    return TimeBounds(_now(gw), gw.max_ahead, gw.max_behind)


def _finish(gw: Gateway, out: Outcome, source: str, raw: bytes) -> Outcome:
    """One dead letter per request that refused anything: the body (bounded) and the
    first errors by position."""
    if out.refused is not None or out.rejected:
        out.records.append(gw.letter(source, raw, out.reason, out.error_text()))
    return out


async def _batch(gw: Gateway, request: web.Request, topic: str) -> web.Response:
    raw = await request.read()
    work = partial(_decode_batch, gw, topic, raw, request.headers.get("Content-Encoding"),
                   request.content_type, _bounds(gw))  # fmt: skip
    out = await gw.decode(work)
    await gw.write(out.records)
    status, doc = out.answer()
    return json_response(status, doc)


def _decode_batch(gw: Gateway, topic: str, raw: bytes, encoding: str | None, ctype: str,
                  bounds: TimeBounds) -> Outcome:  # fmt: skip
    model, key = _BATCHES[topic]
    out = Outcome(topic)
    maker = RecordMaker(out, gw.catalog.name(topic), key, bounds)
    body = raw
    try:
        body = inflate(raw, encoding)
        for position, item in iter_batch(model, body, ctype):
            if isinstance(item, ItemError):
                out.reject(position, item.message)
            else:
                maker.add(position, item)
    except BodyError as exc:
        out.refuse(str(exc), exc.reason)
    return _finish(gw, out, f"http:/v1/{topic}", body)


async def _alertmanager(gw: Gateway, request: web.Request) -> web.Response:
    """Alertmanager retries 5xx and drops 4xx: the valid alerts of a notification are
    stored even when another is refused (400 names it)."""
    raw = await request.read()
    work = partial(_decode_alertmanager, gw, raw, request.headers.get("Content-Encoding"),
                   _now(gw))  # fmt: skip
    out = await gw.decode(work)
    await gw.write(out.records)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)


def _decode_alertmanager(gw: Gateway, raw: bytes, encoding: str | None, now: datetime
                         ) -> Outcome:  # fmt: skip
    out = Outcome("alertmanager")
    maker = RecordMaker(out, gw.catalog.name("alerts"), _alert_key)
    body = raw
    try:
        body = inflate(raw, encoding)
        alerts, errors = decode_alertmanager_items(body, now)
    except BodyError as exc:
        out.refuse(str(exc), exc.reason)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        for e in errors:
            out.reject(e.position, e.message)
        for position, alert in alerts:
            maker.add(position, alert)
    return _finish(gw, out, "http:/v1/alertmanager", body)


async def _pagerduty(gw: Gateway, request: web.Request) -> web.Response:
    """PagerDuty's own answers: 202 success, 400 invalid event, 429 throttled.

    The routing key was checked by ``Gateway.pagerduty`` before this runs."""
    raw = await request.read()
    work = partial(_decode_pagerduty, gw, raw, request.headers.get("Content-Encoding"), _now(gw))
    out, event = await gw.decode(work)
    await gw.write(out.records)
    if out.refused is not None or out.rejected:
        message = out.refused[1] if out.refused is not None else out.errors[0][1]
        status = out.refused[0] if out.refused is not None else 400
        return json_response(status, {"status": "invalid event",
                                      "message": "Event object is invalid",
                                      "errors": message.split("; ")})  # fmt: skip
    return json_response(202, {"status": "success", "message": "Event processed",
                               "dedup_key": event})  # fmt: skip


def _decode_pagerduty(gw: Gateway, raw: bytes, encoding: str | None, now: datetime
                      ) -> tuple[Outcome, str | None]:  # fmt: skip
    out = Outcome("pagerduty")
    body = raw
    try:
        body = inflate(raw, encoding)
        if len(body) > MAX_PAGERDUTY_EVENT:
            raise BodyError(f"event is {len(body)} bytes: PagerDuty's limit is "
                            f"{MAX_PAGERDUTY_EVENT}", "too_large")  # fmt: skip
        event, alert = decode_pagerduty(body, now)
    except BodyError as exc:
        out.refuse(str(exc), exc.reason)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        RecordMaker(out, gw.catalog.name("alerts"), _alert_key).add(0, alert)
        return _finish(gw, out, "http:/v2/enqueue", body), event.dedup_key
    return _finish(gw, out, "http:/v2/enqueue", body), None


async def _remote_write(gw: Gateway, request: web.Request) -> web.Response:
    """Prometheus retries 5xx/429 and drops on other 4xx, so a 400 means 'fix the sender';
    the valid series of a request are stored before it is answered (as Mimir does)."""
    raw = await request.read()
    out = await gw.decode(partial(_decode_remote_write, gw, raw, _bounds(gw)))
    await gw.write(out.records)
    status, doc = out.answer()
    if status == 202:
        return web.Response(status=204)
    return json_response(status, doc)


def _decode_remote_write(gw: Gateway, raw: bytes, bounds: TimeBounds) -> Outcome:
    out = Outcome("remote_write")
    try:
        batch = decode_remote_write(raw)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
        return _finish(gw, out, "http:/api/v1/write", raw)
    if batch.skipped:
        gw.metrics.skipped.labels(route="remote_write", reason="non_finite").inc(batch.skipped)
    for e in batch.errors:
        out.reject(e.position, e.message)
    maker = RecordMaker(out, gw.catalog.name("metrics"), _metric_key, bounds)
    for position, sample in zip(batch.positions, batch.samples, strict=True):
        maker.add(position, sample)
    return _finish(gw, out, "http:/api/v1/write", raw)
