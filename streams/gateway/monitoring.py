"""Routes for monitoring systems that tocsin ships an integration for: Zabbix's media
type (``POST /v1/zabbix``) and Checkmk's notification plugin (``POST /v1/checkmk``).

Each authenticates with its own tokens (``TOCSIN_ZABBIX_TOKENS``,
``TOCSIN_CHECKMK_TOKENS``), valid on that route only, or with a gateway token. Once a
route's own tokens are configured it is never open, whatever ``--insecure-no-auth`` says.
A request that authenticated but does not map (a field missing or wrong, a Zabbix event
that is not a trigger's) is answered 4xx naming the field and dead-lettered once.

What a person did in the monitoring system (a Zabbix acknowledgement or comment, a
Checkmk acknowledgement or downtime) also becomes a ``note`` command on the incident
that holds the alert, when the gateway's incident index knows one: the incident's
timeline says who did what, with the comment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

from connectors.sources.body import inflate
from connectors.sources.checkmk import decode_checkmk_items
from connectors.sources.zabbix import MAX_EVENT, decode_zabbix
from schemas.alerts import Alert
from schemas.commands import Command
from schemas.errors import DecodeError
from schemas.types import MAX_TEXT
from streams.gateway.decoding import decode_alert_items
from streams.gateway.records import Outcome, RecordMaker
from streams.gateway.responses import json_response, unauthorized
from streams.gateway.tenancy import tenant_of
from streams.gateway.writer import Record

if TYPE_CHECKING:
    from streams.gateway.app import Authenticate, Gateway
    from streams.gateway.auth import Caller

SOURCES = ("zabbix", "checkmk")
NOTED_CHECKMK = {"ACKNOWLEDGEMENT": "acknowledged", "DOWNTIMESTART": "started a downtime",
                 "DOWNTIMEEND": "ended the downtime",
                 "DOWNTIMECANCELLED": "cancelled the downtime"}  # fmt: skip


def add_routes(gw: Gateway, app: web.Application) -> None:
    app.router.add_post("/v1/zabbix", gw.route("zabbix", lambda r: _zabbix(gw, r),
                                               auth=_authenticate(gw, "zabbix")))  # fmt: skip
    app.router.add_post("/v1/checkmk", gw.route("checkmk", lambda r: _checkmk(gw, r),
                                                auth=_authenticate(gw, "checkmk")))  # fmt: skip


def _authenticate(gw: Gateway, source: str) -> Authenticate:
    async def authenticate(request: web.Request) -> Caller | web.Response:
        own = gw.source_tokens.get(source, frozenset())
        header = request.headers.get("Authorization")
        who = gw.credentials.source(source, own, header)
        if who is not None:
            return who
        limited = any(only == source for _, only in gw.credentials.tenants.tokens.values())
        if (own or limited) and not gw.credentials.has_tokens:
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
    work = partial(_decode_zabbix, gw, raw, request.headers.get("Content-Encoding"), _now(gw),
                   tenant_of(request))  # fmt: skip
    out, alert = await gw.decode(work)
    await gw.write(out.records, request)
    if out.refused is not None:
        return json_response(out.refused[0], {"error": out.refused[1]})
    assert alert is not None
    return json_response(200, {"accepted": 1, "fingerprint": alert.fingerprint,
                               "status": alert.status})  # fmt: skip


def _decode_zabbix(gw: Gateway, raw: bytes, encoding: str | None, now: datetime,
                   tenant: str) -> tuple[Outcome, Alert | None]:  # fmt: skip
    out = Outcome("zabbix")
    body = raw
    alert: Alert | None = None
    try:
        body = inflate(raw, encoding, MAX_EVENT)
        _, alert = decode_zabbix(body, now)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        alert = alert.model_copy(update={"tenant": tenant})
        RecordMaker(out, gw.catalog.name("alerts"), _key, tenant=tenant).add(0, alert)
        if out.rejected:  # the record would not fit in Kafka: named like any field
            out.refuse(out.errors[0][1], "too_large")
            alert = None
        else:
            out.records.extend(_notes(gw, [alert], now))
    return _finish(gw, out, "/v1/zabbix", body), alert


async def _checkmk(gw: Gateway, request: web.Request) -> web.Response:
    """200 when every notification was stored; 400 naming the others by position (the
    valid ones were stored): the plugin then exits 2, a permanent failure for Checkmk."""
    raw = await request.read()
    work = partial(_decode_checkmk, gw, raw, request.headers.get("Content-Encoding"), _now(gw),
                   tenant_of(request))  # fmt: skip
    out = await gw.decode(work)
    await gw.write(out.records, request)
    status, doc = out.answer()
    if status == 202:
        return json_response(200, doc)
    if "errors" in doc:
        doc = {"error": doc["errors"][0]["error"], **doc}
    return json_response(status, doc)


def _decode_checkmk(gw: Gateway, raw: bytes, encoding: str | None, now: datetime,
                    tenant: str) -> Outcome:  # fmt: skip
    out, alerts = decode_alert_items(gw.topics, "checkmk", "/v1/checkmk", decode_checkmk_items,
                                     raw, encoding, now, tenant, keep=True)  # fmt: skip
    out.records.extend(_notes(gw, alerts, now))
    return out


def note_of(alert: Alert) -> tuple[str, str] | None:
    """(actor, text) of what a person did about ``alert`` in its monitoring system."""
    notes = alert.annotations
    if alert.source == "zabbix" and notes.get("zabbix_action") == "update":
        user = notes.get("zabbix_update_user") or "someone"
        text = f"Zabbix: {user} {notes.get('zabbix_update_action') or 'updated the problem'}"
        message = notes.get("zabbix_update_message")
        return user, f"{text}: {message}" if message else text
    what = NOTED_CHECKMK.get(notes.get("checkmk_notification", ""))
    if alert.source == "checkmk" and what:
        author = notes.get("author") or "Checkmk"
        comment = notes.get("comment")
        return author, f"Checkmk: {author} {what}: {comment}" if comment else \
            f"Checkmk: {author} {what}"  # fmt: skip
    return None


def _notes(gw: Gateway, alerts: list[Alert], now: datetime) -> list[Record]:
    """Note commands for the alerts that report a person's action on a known incident.
    Their event ids derive from their content, so a resent message notes nothing twice."""
    if gw.index is None:
        return []
    out = Outcome("monitoring-notes")
    makers: dict[str, RecordMaker] = {}
    for alert in alerts:
        maker = makers.setdefault(alert.tenant, RecordMaker(
            out, gw.catalog.name("commands"), _command_key, tenant=alert.tenant))  # fmt: skip
        note = note_of(alert)
        incident = gw.index.incident_of(alert.fingerprint, alert.tenant) if note else None
        if note is None or incident is None:
            continue
        actor, text = note
        at = _update_time(alert) or alert.starts_at
        try:
            command = Command(action="note", incident_id=incident, origin="api",
                              tenant=alert.tenant,
                              actor=actor[:256].strip() or alert.source, at=min(at, now),
                              text=text[:MAX_TEXT])  # fmt: skip
        except ValidationError:  # the alert itself is stored; a note is a courtesy
            continue
        maker.add(0, command)
    return out.records


def _command_key(command: Command) -> bytes:
    return (command.incident_id or "").encode()


def _update_time(alert: Alert) -> datetime | None:
    raw = alert.annotations.get("zabbix_update_time")
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
