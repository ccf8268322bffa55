"""Routes for monitoring systems that tocsin ships an integration for: Zabbix's media
type (``POST /v1/zabbix``) and Checkmk's notification plugin (``POST /v1/checkmk``).

Each authenticates with its own tokens (``TOCSIN_ZABBIX_TOKENS``,
``TOCSIN_CHECKMK_TOKENS``), valid on that route only, or with a gateway token. Once a
route's own tokens are configured it is never open, whatever ``--insecure-no-auth`` says.
A request that authenticated but does not map (a field missing or wrong, a Zabbix event
that is not a trigger's) is answered 4xx naming the field and dead-lettered once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.sources.body import inflate
from connectors.sources.checkmk import decode_checkmk_items
from connectors.sources.zabbix import MAX_EVENT, decode_zabbix
from schemas.alerts import Alert
from schemas.errors import DecodeError
from streams.gateway.auth import source_bearer
from streams.gateway.records import Outcome, RecordMaker
from streams.gateway.responses import json_response, unauthorized

if TYPE_CHECKING:
    from streams.gateway.app import Authenticate, Gateway

SOURCES = ("zabbix", "checkmk")


def add_routes(gw: Gateway, app: web.Application) -> None:
    app.router.add_post("/v1/zabbix", gw.route("zabbix", lambda r: _zabbix(gw, r),
                                               auth=_authenticate(gw, "zabbix")))  # fmt: skip
    app.router.add_post("/v1/checkmk", gw.route("checkmk", lambda r: _checkmk(gw, r),
                                                auth=_authenticate(gw, "checkmk")))  # fmt: skip


def _authenticate(gw: Gateway, source: str) -> Authenticate:
    async def authenticate(request: web.Request) -> str | web.Response:
        own = gw.source_tokens.get(source, frozenset())
        header = request.headers.get("Authorization")
        who = source_bearer(own, header)
        if who is not None:
            return who
        if own and not gw.credentials.tokens:
            return unauthorized()  # its credential is configured: never open
        return await gw.bearer(request)

    return authenticate


def _key(alert: Alert) -> bytes:
    return alert.fingerprint.encode()


def _now(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), UTC)


def _finish(gw: Gateway, out: Outcome, route: str, body: bytes) -> Outcome:
    if out.refused is not None or out.rejected:
        out.records.append(gw.letter(f"http:{route}", body, out.reason, out.error_text()))
    return out


async def _zabbix(gw: Gateway, request: web.Request) -> web.Response:
    """The media type throws on anything but 2xx, so Zabbix shows the answer's error in
    its action log and retries as the media type's attempts say."""
    raw = await request.read()
    work = partial(_decode_zabbix, gw, raw, request.headers.get("Content-Encoding"), _now(gw))
    out, alert = await gw.decode(work)
    await gw.write(out.records)
    if out.refused is not None:
        return json_response(out.refused[0], {"error": out.refused[1]})
    assert alert is not None
    return json_response(200, {"accepted": 1, "fingerprint": alert.fingerprint,
                               "status": alert.status})  # fmt: skip


def _decode_zabbix(gw: Gateway, raw: bytes, encoding: str | None, now: datetime
                   ) -> tuple[Outcome, Alert | None]:  # fmt: skip
    out = Outcome("zabbix")
    body = raw
    alert: Alert | None = None
    try:
        body = inflate(raw, encoding, MAX_EVENT)
        _, alert = decode_zabbix(body, now)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        RecordMaker(out, gw.catalog.name("alerts"), _key).add(0, alert)
        if out.rejected:  # the record would not fit in Kafka: named like any field
            out.refuse(out.errors[0][1], "too_large")
            alert = None
    return _finish(gw, out, "/v1/zabbix", body), alert


async def _checkmk(gw: Gateway, request: web.Request) -> web.Response:
    """200 when every notification was stored; 400 naming the others by position (the
    valid ones were stored): the plugin then exits 2, a permanent failure for Checkmk."""
    raw = await request.read()
    work = partial(_decode_checkmk, gw, raw, request.headers.get("Content-Encoding"), _now(gw))
    out = await gw.decode(work)
    await gw.write(out.records)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)


def _decode_checkmk(gw: Gateway, raw: bytes, encoding: str | None, now: datetime) -> Outcome:
    out = Outcome("checkmk")
    maker = RecordMaker(out, gw.catalog.name("alerts"), _key)
    body = raw
    try:
        body = inflate(raw, encoding)
        alerts, errors = decode_checkmk_items(body, now)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        for e in errors:
            out.reject(e.position, e.message)
        for position, alert in alerts:
            maker.add(position, alert)
    return _finish(gw, out, "/v1/checkmk", body)
