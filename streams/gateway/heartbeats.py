"""GET or POST /v1/heartbeats/{name}: a cron job, a backup or a batch run checks in.

``curl -fsS -m 10 --retry 3 -H "Authorization: Bearer $TOKEN" https://gw/v1/heartbeats/nightly-backup``

Bearer tokens like every intake; the token's tenant owns the heartbeat (its config
lists it). The ping is acknowledged by Kafka (`heartbeats`)
before the 200; the agents decide what it means (streams/agents/heartbeats.py). A
POST body (at most ``MAX_MESSAGE`` bytes of text, e.g. the job's last output line) is
kept with the ping. With ``--config`` the gateway answers 404 for a name the config
does not list, so a typo in a crontab fails loudly (``curl -f``) instead of pinging
nothing; the request goes to ``deadletter`` like every refusal after authentication.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from schemas import encode
from schemas.config.heartbeats import valid_name
from schemas.heartbeats import HeartbeatPing, heartbeat_key
from streams.gateway.responses import json_response
from streams.gateway.tenancy import tenant_of

if TYPE_CHECKING:
    from streams.gateway.app import Gateway

MAX_MESSAGE = 1024


def add_routes(gw: Gateway, app: web.Application) -> None:
    handler = gw.route("heartbeats", lambda r: _ping(gw, r))
    app.router.add_get("/v1/heartbeats/{name}", handler)
    app.router.add_post("/v1/heartbeats/{name}", handler)


async def _ping(gw: Gateway, request: web.Request) -> web.Response:
    name = request.match_info["name"]
    # what is dead-lettered: the request line (the name is in the path), then the body
    source = f"{request.method} {request.path_qs}"[:2048].encode(errors="replace") + b"\n"
    if request.content_length is not None and request.content_length > MAX_MESSAGE:
        return await _refuse(gw, 413, f"body: more than {MAX_MESSAGE} bytes (a heartbeat "
                                      "keeps one line of the job's output)", source)  # fmt: skip
    raw = await request.read() if request.method == "POST" else b""
    if len(raw) > MAX_MESSAGE:
        return await _refuse(gw, 413, f"body: more than {MAX_MESSAGE} bytes", source + raw)
    if not valid_name(name):
        return await _refuse(gw, 400, f"heartbeats.name: {name[:80]!r} is not a heartbeat name "
                                      "(lowercase letters, digits, '_', '.', '-'; at most 64)",
                             source + raw)  # fmt: skip
    tenant = tenant_of(request)
    cfg = gw.tenant_config(request)
    hb = cfg.heartbeat(name) if cfg is not None else None
    if gw.config is not None and hb is None:
        return await _refuse(gw, 404, f"heartbeats.name: {name!r} is not a heartbeat of the "
                                      f"config of tenant {tenant!r} (heartbeats: in its config "
                                      "directory)", source + raw)  # fmt: skip
    text = raw.decode("utf-8", errors="replace").strip()[:MAX_MESSAGE]
    ping = HeartbeatPing(tenant=tenant, produced_at=datetime.fromtimestamp(gw.clock(), UTC),
                         name=name, via="http", message=text)  # fmt: skip
    await gw.write([(gw.catalog.name("heartbeats"), heartbeat_key(tenant, name), encode(ping))],
                   request)  # fmt: skip
    doc: dict[str, Any] = {"ok": True, "heartbeat": name, "at": ping.produced_at.isoformat()}
    if hb is not None:
        doc["expected_every_s"] = hb.interval.total_seconds()
        doc["missed_after_s"] = hb.allowance.total_seconds()
    return json_response(200, doc)


async def _refuse(gw: Gateway, status: int, error: str, raw: bytes) -> web.Response:
    await gw.dead_letter("http:/v1/heartbeats", raw,
                         "too_large" if status == 413 else "validation", error)  # fmt: skip
    return json_response(status, {"error": error})
