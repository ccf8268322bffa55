"""Slack in: the interactivity endpoint (buttons), the slash command, and Socket Mode.

The HTTP routes verify Slack's v0 signature over the raw body before anything else;
Socket Mode needs no signature (the app-level token authenticates the websocket).
Both transports share ``interaction`` and ``slash``: find the request's tenant from its
workspace or channel (a tenant's ``intake.slack_teams`` / ``slack_channels``; one
mapped to no tenant is the provider's, ``default``), authorize the user in that tenant's
config and against the incident's owning team, refuse an incident of another tenant
(ephemerally, nothing written), put a Command of the tenant on `commands` (acknowledged
by Kafka), answer ephemerally. The provider's staff with the ``provider`` role act on
any tenant's incident from any workspace or channel, as their role does in the API: the
command carries the incident's tenant.
The message itself changes when the agents have applied the command and the notifier
updates it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import aiohttp
import orjson
import structlog
from aiohttp import web

from connectors.slack.actions import ActionError, Query, from_interaction, from_slash, origin
from connectors.slack.auth import ResponderDirectory
from connectors.slack.signature import SignatureError
from schemas import Command, encode
from streams.gateway.auth import Caller
from streams.gateway.limits import retry_after
from streams.gateway.responses import json_response

if TYPE_CHECKING:
    from streams.gateway.app import Gateway

log = structlog.get_logger(__name__)
# a click right after the page may beat the incident snapshot; Slack wants an answer in 3 s
INDEX_WAIT_S = 1.5


def add_routes(gw: Gateway, app: web.Application) -> None:
    for path, interactive in (("/slack/interactions", True), ("/slack/commands", False)):
        app.router.add_post(path, gw.route("slack", _handler(gw, interactive),
                                           auth=lambda r: _signed(gw, r),
                                           throttled=_throttled))  # fmt: skip


def _handler(gw: Gateway, interactive: bool) -> Any:
    return lambda request: _http(gw, request, interactive)


async def _signed(gw: Gateway, request: web.Request) -> Caller | web.Response:
    """Slack's signature is the credential of the HTTP routes (one rate limit for all)."""
    raw = await request.read()
    if gw.verifier is None:
        return json_response(503, {"error": "SLACK_SIGNING_SECRET is not configured"})
    try:
        gw.verifier.verify(request.headers.get("X-Slack-Request-Timestamp"),
                           request.headers.get("X-Slack-Signature"), raw, gw.clock())  # fmt: skip
    except SignatureError as exc:
        return json_response(401, {"error": str(exc)})
    return Caller("slack", None)  # the tenant is the payload's workspace or channel


def _throttled(wait_s: float) -> web.Response:
    # Slack shows a non-200 answer as a bare failure; tell the responder what to do
    return _ephemeral(f"tocsin is receiving too many Slack requests; retry in "
                      f"{retry_after(wait_s)} s.")  # fmt: skip


async def _http(gw: Gateway, request: web.Request, interactive: bool) -> web.Response:
    raw = await request.read()  # signature already verified by ``_signed``
    form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
    if interactive:
        try:
            payload = orjson.loads(form.get("payload", ""))
        except orjson.JSONDecodeError:
            return _ephemeral("tocsin could not read that action (no JSON payload).")
        if not isinstance(payload, dict):
            return _ephemeral("tocsin could not read that action.")
        answer = await interaction(gw, payload)
    else:
        answer = await slash(gw, form)
    return json_response(200, answer)


def tenant_of_slack(gw: Gateway, payload: dict[str, Any]) -> str:
    """The tenant a Slack request acts for: its channel's, else its workspace's, else the
    provider's own (``default``)."""
    team, channel = origin(payload)
    return gw.tenancy.slack_tenant(team, channel) or "default"


def _directory(gw: Gateway, tenant: str) -> ResponderDirectory:
    directory = gw.directories.get(tenant)
    if directory is None:  # a tenant without a config knows nobody
        from connectors.slack.auth import StaticDirectory

        return StaticDirectory()
    return directory


async def interaction(gw: Gateway, payload: dict[str, Any]) -> dict[str, Any]:
    user = payload.get("user")
    tenant = tenant_of_slack(gw, payload)
    if not _known(gw, tenant, str(user.get("id") or "") if isinstance(user, dict) else ""):
        answer = _not_authorised()
    else:
        try:
            command = from_interaction(payload, datetime.now(UTC))
        except ActionError as exc:
            return _text(f"tocsin: {exc}")
        answer = await _submit(gw, tenant, command)
    url = payload.get("response_url")
    if isinstance(url, str) and url.startswith(gw.response_url_prefix):
        # a button's HTTP answer is not shown to the user; the response_url is
        asyncio.get_running_loop().create_task(_respond(url, answer))
    return answer


async def slash(gw: Gateway, form: dict[str, str]) -> dict[str, Any]:
    tenant = tenant_of_slack(gw, dict(form))
    if not _known(gw, tenant, form.get("user_id", "")):
        return _not_authorised()
    try:
        parsed = from_slash(form.get("text", ""), form.get("user_id", ""), datetime.now(UTC),
                            form.get("trigger_id", ""))  # fmt: skip
    except ActionError as exc:
        return _text(str(exc))
    if isinstance(parsed, Query):
        return _query(gw, tenant, parsed)
    return await _submit(gw, tenant, parsed)


def _staff(gw: Gateway, slack_user: str) -> str | None:
    """The user id of the provider's staff member with the provider role this Slack user
    is, or None."""
    return gw.provider_staff.get(slack_user) if slack_user else None


def _known(gw: Gateway, tenant: str, slack_user: str) -> bool:
    """Only users the tenant's config knows (or the provider's staff with the provider
    role) see or touch incidents: titles name customers."""
    if slack_user and _directory(gw, tenant).user_of(slack_user) is not None:
        return True
    if _staff(gw, slack_user) is not None:
        return True
    log.info("slack_user_unknown", user=slack_user[:40], tenant=tenant)
    return False


async def _submit(gw: Gateway, tenant: str, command: Command) -> dict[str, Any]:
    slack_user = command.actor
    update = command.status.update if command.status is not None else None
    incident_id = command.incident_id or (update.incident_id if update else "")
    view = await _incident(gw, incident_id)
    if view is None:
        return _text(f"tocsin: no incident {incident_id!r} is known; check the id in the message.")
    staff = _staff(gw, slack_user)
    if staff is not None:
        # the provider role: any tenant's incident, whichever team owns it; the command
        # is the incident's tenant's, as the agents require
        log.info("slack_action_by_provider", user=staff, incident=incident_id,
                 tenant=view.tenant, workspace_tenant=tenant)  # fmt: skip
        actor, tenant = staff, view.tenant
    else:
        if view.tenant != tenant:
            log.info("slack_action_other_tenant", user=slack_user, incident=incident_id,
                     tenant=tenant)  # fmt: skip
            return _text(f"tocsin: {incident_id} is not an incident of this Slack "
                         f"workspace's tenant ({tenant}); nothing was done.")  # fmt: skip
        directory = _directory(gw, tenant)
        if not directory.may_act(slack_user, view.team):
            log.info("slack_action_refused", user=slack_user, incident=incident_id,
                     team=view.team)  # fmt: skip
            return _text(f"You are not a member or responder of team {view.team or '-'}, "
                         f"which owns {incident_id}; ask its on-call to act.")  # fmt: skip
        actor = directory.user_of(slack_user) or slack_user
    command = command.model_copy(update={"actor": actor, "tenant": tenant})
    if update is not None:
        return await status_update(gw, command, view.status, actor)
    await gw.write([(gw.catalog.name("commands"), incident_id.encode(), encode(command))])
    what = {"ack": "acknowledgement", "resolve": "resolution", "escalate": "escalation",
            "snooze": "snooze", "note": "note"}.get(command.action, command.action)  # fmt: skip
    return _text(f"tocsin: {what} of {incident_id} by {actor} accepted; the incident message "
                 "updates once it is applied.")  # fmt: skip


async def status_update(gw: Gateway, command: Command, incident_status: str,
                        actor: str) -> dict[str, Any]:  # fmt: skip
    """`/incident update`: on `commands` for the projector, unless the incident is resolved
    (its story on the status pages is closed: nothing is written)."""
    assert command.status is not None and command.status.update is not None
    update = command.status.update
    if incident_status == "resolved":
        return _text(f"tocsin: {update.incident_id} is resolved; its status page story is "
                     "closed, so the update was not posted.")  # fmt: skip
    change = command.status.model_copy(update={"update": update.model_copy(
        update={"author": actor})})  # fmt: skip
    command = command.model_copy(update={"status": change})
    key = update.incident_id.encode()
    await gw.write([(gw.catalog.name("commands"), key, encode(command))])
    return _text(f"tocsin: {update.status} update for {update.incident_id} by {actor} accepted "
                 f"for the {', '.join(update.audiences)} status pages.")  # fmt: skip


async def _incident(gw: Gateway, incident_id: str) -> Any:
    if gw.index is None:
        return None
    waited = 0.0
    view = gw.index.get(incident_id)
    while view is None and waited < INDEX_WAIT_S:
        await asyncio.sleep(0.1)
        waited += 0.1
        view = gw.index.get(incident_id)
    return view


def _query(gw: Gateway, tenant: str, q: Query) -> dict[str, Any]:
    if gw.index is None:
        return _text("tocsin: incidents are not available on this gateway.")
    if q.kind == "list":
        rows = gw.index.open_incidents(tenant)[:20]
        if not rows:
            return _text("No open incidents.")
        return _text("\n".join(f"{v.priority} `{v.incident_id}` {v.status}: "
                               f"{_escape(v.title)[:80]} ({v.assignee or 'unassigned'})"
                               for v in rows))  # fmt: skip
    if q.incident_id is None:
        on_call = sorted({v.assignee for v in gw.index.open_incidents(tenant) if v.assignee})
        return _text("On call for open incidents: " + (", ".join(on_call) or "nobody paged"))
    view = gw.index.get(q.incident_id)
    if view is None or (view.tenant != tenant and _staff(gw, q.actor) is None):
        return _text(f"No incident {q.incident_id!r} is known.")
    return _text(f"{view.incident_id}: {view.assignee or 'unassigned'} (team {view.team or '-'},"
                 f" {view.status})")  # fmt: skip


def _text(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def _not_authorised() -> dict[str, Any]:
    return _text(
        "You are not authorised to use tocsin: your Slack user is not in its "
        "configuration. Ask a tocsin administrator to add your slack_id."
    )


def _ephemeral(text: str) -> web.Response:
    return json_response(200, _text(text))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _respond(url: str, answer: dict[str, Any]) -> None:
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as s,
            s.post(url, json={**answer, "replace_original": False}),
        ):
            pass
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("slack_response_url_failed", error=str(exc)[:200])


def enable_socket_mode(gw: Gateway, app: web.Application, app_token: str,
                       bot_token: str | None, base_url: str | None = None) -> None:  # fmt: skip
    """Connect over Socket Mode when the app starts, disconnect when it stops."""

    clients: list[Any] = []

    async def start(_: web.Application) -> None:
        clients.append(await socket_mode(gw, app_token, bot_token, base_url))

    async def stop(_: web.Application) -> None:
        for client in clients:
            await client.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


async def socket_mode(gw: Gateway, app_token: str, bot_token: str | None,
                      base_url: str | None = None) -> Any:  # fmt: skip
    """Connect over Socket Mode (no public ingress); returns the running client."""
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse
    from slack_sdk.web.async_client import AsyncWebClient

    web_client = AsyncWebClient(token=bot_token, base_url=base_url or AsyncWebClient.BASE_URL)
    client = SocketModeClient(app_token=app_token, web_client=web_client)

    async def on_request(c: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        if req.type == "interactive" and isinstance(req.payload, dict):
            answer = await _safely(interaction(gw, req.payload))
        elif req.type == "slash_commands" and isinstance(req.payload, dict):
            answer = await _safely(slash(gw, {k: str(v) for k, v in req.payload.items()}))
        else:
            answer = None
        await c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                             payload=answer))  # fmt: skip

    client.socket_mode_request_listeners.append(on_request)
    await client.connect()  # type: ignore[no-untyped-call]
    return client


async def _safely(answer: Any) -> dict[str, Any]:
    """Kafka trouble over Socket Mode: tell the responder instead of timing out silently."""
    from streams.gateway.writer import Backpressure, NotAcknowledged

    try:
        result: dict[str, Any] = await answer
    except (Backpressure, NotAcknowledged) as exc:
        return _text(f"tocsin could not record that right now ({exc}); please retry.")
    return result
