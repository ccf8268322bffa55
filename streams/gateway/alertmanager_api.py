"""Alertmanager's API v2, the part its clients use, on the gateway: Prometheus posts
its alerts (``POST /api/v2/alerts``), amtool and Grafana's Alertmanager data source list
alerts, list/create/expire silences and read the status.

- Alerts become Alert transitions on `alerts` (connectors/sources/prometheus_alerts.py),
  item by item as Alertmanager answers: the valid ones are stored, a 400 names the rest.
- Silences are `silence` / `expire_silence` commands on `commands`: the agents apply them
  like any runtime silence. Listing reads a SilenceView (silences_view.py).
- Listed alerts are the firing members of open incidents (alerts_view.py), each marked
  suppressed with the ids of the active silences that match it.

Every route authenticates like the other intakes: a bearer token, or HTTP basic auth whose
password is a token (amtool's ``http://user:token@host`` and Prometheus' ``basic_auth``).
The token's tenant is the only one a request sees and acts in: its alerts, its silences
(another tenant's silence id is unknown: 404), its teams as receivers.
Errors are answered as Alertmanager answers them: a JSON string (its clients decode the
body of a 400 as a string), naming the field.
"""

from __future__ import annotations

import base64
import binascii
import platform
import re
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from connectors.sources.alertmanager_silences import (
    decode_postable_silence,
    matchers_json,
    parse_filter,
)
from connectors.sources.batches import BodyError, inflate
from connectors.sources.prometheus_alerts import decode_postable_alerts
from processors.rules.matching import LabelPredicate, compile_matchers
from schemas import Command, DecodeError, encode
from streams.gateway.alerts_view import AlertView, FiringAlert, OpenIncidentAlerts
from streams.gateway.auth import Caller
from streams.gateway.decoding import decode_alert_items
from streams.gateway.follower import TopicFollower
from streams.gateway.responses import unauthorized
from streams.gateway.silences_view import (
    KnownSilence,
    Silences,
    SilenceView,
    expire_command,
    read_command,
    silence_command,
)
from streams.gateway.tenancy import tenant_of
from streams.gateway.writer import Record

if TYPE_CHECKING:
    from streams.gateway.app import Gateway


def _now(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), UTC)


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(message[:4000]),
                        content_type="application/json")  # fmt: skip


def _json(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc, option=orjson.OPT_UTC_Z),
                        content_type="application/json")  # fmt: skip


class AlertmanagerAPI:
    """The routes and the views they read; views not given are built from the topics
    when the gateway starts."""

    def __init__(self, gw: Gateway, silences: SilenceView | None = None,
                 alerts: AlertView | None = None) -> None:  # fmt: skip
        self.gw = gw
        self._silences = Silences() if silences is None else None  # built here: followed here
        self._alerts = OpenIncidentAlerts() if alerts is None else None
        self.silences: SilenceView = silences or self._silences  # type: ignore[assignment]
        self.alerts: AlertView = alerts or self._alerts  # type: ignore[assignment]
        self._followers: list[TopicFollower] = []
        self.started = _now(gw)

    def add_routes(self, app: web.Application) -> None:
        gw, auth = self.gw, partial(bearer_or_basic, self.gw)
        add = app.router
        add.add_post("/api/v2/alerts", gw.route("am_post_alerts", self.post_alerts, auth=auth))
        add.add_get("/api/v2/alerts", gw.route("am_get_alerts", self.get_alerts, auth=auth))
        add.add_get("/api/v2/alerts/groups", gw.route("am_alert_groups", self.alert_groups,
                                                      auth=auth))  # fmt: skip
        add.add_get("/api/v2/silences", gw.route("am_get_silences", self.get_silences,
                                                 auth=auth))  # fmt: skip
        add.add_post("/api/v2/silences", gw.route("am_post_silence", self.post_silence,
                                                  auth=auth))  # fmt: skip
        add.add_get("/api/v2/silence/{id}", gw.route("am_get_silence", self.get_silence,
                                                     auth=auth))  # fmt: skip
        expire = gw.route("am_expire_silence", self.expire_silence, auth=auth)
        add.add_delete("/api/v2/silence/{id}", expire)
        add.add_get("/api/v2/status", gw.route("am_status", self.status, auth=auth))
        add.add_get("/api/v2/receivers", gw.route("am_receivers", self.receivers, auth=auth))
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _start(self, _: web.Application) -> None:
        catalog, settings = self.gw.catalog, self.gw.settings
        if (silences := self._silences) is not None:
            self._followers.append(TopicFollower(
                settings, catalog.name("commands"),
                lambda _k, v: read_command(v, silences.apply), "silences").start())  # fmt: skip
        if (alerts := self._alerts) is not None:
            follower = TopicFollower(settings, catalog.name("incidents"), alerts.read_incident,
                                     "alerts")  # fmt: skip
            self._followers.append(follower.start())

    async def _stop(self, _: web.Application) -> None:
        for f in self._followers:
            f.stop()

    # -- alerts --------------------------------------------------------------------------

    async def post_alerts(self, request: web.Request) -> web.Response:
        gw = self.gw
        raw = await request.read()
        work = partial(decode_alert_items, gw.topics, "alertmanager_api", "/api/v2/alerts",
                       decode_postable_alerts, raw, request.headers.get("Content-Encoding"),
                       _now(gw), tenant_of(request))  # fmt: skip
        out, _ = await gw.decode(work, len(raw))
        await gw.write(out.records, request)
        status, _ = out.answer()
        if status == 202:
            return web.Response(status=200)
        if out.refused is not None:
            return _text(out.refused[0], out.refused[1])
        return _text(400, f"{out.error_text()} (the other alerts were accepted)")

    def _listed(self, request: web.Request) -> list[tuple[FiringAlert, list[str]]]:
        """The firing alerts the query asks for, each with the silences that mute it."""
        q = request.query
        flags = {k: _flag(q, k) for k in ("active", "silenced", "inhibited", "unprocessed")}
        match = _filter(q.getall("filter", []))
        receiver = _receiver(q.get("receiver"))
        now = _now(self.gw)
        tenant = tenant_of(request)
        active = [s for s in self._silences_of(tenant, now) if s.state(now) == "active"]
        out = []
        for a in self.alerts.firing():
            if a.tenant != tenant:
                continue
            if not match(a.labels) or (receiver and not receiver.fullmatch(a.receiver)):
                continue
            by = [s.id for s in active if s.matches(a.labels)]
            if (by and not flags["silenced"]) or (not by and not flags["active"]):
                continue
            out.append((a, by))
        return out

    async def get_alerts(self, request: web.Request) -> web.Response:
        try:
            listed = self._listed(request)
        except ValueError as exc:
            return _text(400, str(exc))
        return _json([_gettable_alert(a, by) for a, by in listed])

    async def alert_groups(self, request: web.Request) -> web.Response:
        try:
            listed = self._listed(request)
        except ValueError as exc:
            return _text(400, str(exc))
        groups: dict[str, dict[str, Any]] = {}
        for a, by in listed:
            g = groups.setdefault(a.incident_id, {"labels": a.group_labels, "routeLabels": {},
                                                  "receiver": {"name": a.receiver},
                                                  "alerts": []})  # fmt: skip
            g["alerts"].append(_gettable_alert(a, by))
        return _json(list(groups.values()))

    # -- silences ------------------------------------------------------------------------

    async def get_silences(self, request: web.Request) -> web.Response:
        try:
            wanted = [parse_filter(f) for f in request.query.getall("filter", [])]
            states = {k for k in ("active", "pending", "expired") if _flag(request.query, k)}
        except ValueError as exc:
            return _text(400, str(exc))
        now = _now(self.gw)
        found = [
            s
            for s in self._silences_of(tenant_of(request), now)
            if s.state(now) in states and all(m in s.spec.matchers for m in wanted)
        ]
        found.sort(key=lambda s: _order(s, now))
        return _json([_gettable_silence(s, now) for s in found])

    def _silences_of(self, tenant: str, now: datetime) -> list[KnownSilence]:
        return [s for s in self.silences.all(now) if s.tenant == tenant]

    def _silence(self, request: web.Request, silence_id: str) -> KnownSilence | None:
        """The silence of the request's tenant with this id (another tenant's: None)."""
        known = self.silences.get(silence_id)
        return known if known is not None and known.tenant == tenant_of(request) else None

    async def get_silence(self, request: web.Request) -> web.Response:
        known = self._silence(request, request.match_info["id"])
        if known is None:
            return _text(404, f"silence {request.match_info['id']!r:.80} not found")
        return _json(_gettable_silence(known, _now(self.gw)))

    async def post_silence(self, request: web.Request) -> web.Response:
        gw = self.gw
        raw = await request.read()
        now = _now(gw)
        try:
            body = inflate(raw, request.headers.get("Content-Encoding"))
            spec, replaces = decode_postable_silence(body, now)
        except (BodyError, DecodeError) as exc:
            reason = getattr(exc, "reason", "validation")
            await gw.dead_letter("http:/api/v2/silences", raw, reason, str(exc))
            return _text(413 if reason == "too_large" else 400, str(exc))
        commands: list[Command] = []
        tenant = tenant_of(request)
        if replaces is not None:
            old = self._silence(request, replaces)
            if old is None:
                return _text(404, f"PostableSilence.id: silence {replaces!r:.80} not found")
            if old.state(now) != "expired":  # an update is the old one ended, a new one begun
                commands.append(expire_command(old.id, spec.author, now, tenant))
        created = silence_command(spec, now, tenant)
        commands.append(created)
        await self._write(commands)
        return _json({"silenceID": created.event_id})

    async def expire_silence(self, request: web.Request) -> web.Response:
        known = self._silence(request, request.match_info["id"])
        if known is None:
            return _text(404, f"silence {request.match_info['id']!r:.80} not found")
        now = _now(self.gw)
        if known.state(now) != "expired":  # expiring an expired silence changes nothing
            await self._write([expire_command(known.id, "api", now, known.tenant)])
        return web.Response(status=200)

    async def _write(self, commands: list[Command]) -> None:
        """Acknowledged by Kafka, then shown at once (the follower reads them back later)."""
        topic = self.gw.catalog.name("commands")
        records: list[Record] = [
            (topic, (c.silence_id or c.event_id).encode(), encode(c)) for c in commands
        ]
        await self.gw.write(records)
        for c in commands:
            self.silences.apply(c)

    # -- status --------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        return _json({
            "cluster": {"name": "tocsin", "status": "ready", "peers": []},
            "versionInfo": {"version": _version(), "revision": "", "branch": "",
                            "buildUser": "tocsin", "buildDate": "",
                            "goVersion": f"python{platform.python_version()}"},
            "config": {"original": self._config_yaml(request)},
            "uptime": self.started,
        })  # fmt: skip

    async def receivers(self, request: web.Request) -> web.Response:
        return _json([{"name": n} for n in self._receivers(request)])

    def _receivers(self, request: web.Request) -> list[str]:
        cfg = self.gw.tenant_config(request)
        teams = [t.id for t in cfg.teams] if cfg else []
        return ["tocsin", *teams]

    def _config_yaml(self, request: web.Request) -> str:
        """An Alertmanager configuration that says what tocsin does (read-only: the real
        configuration is tocsin's YAML), for clients that parse ``config.original``."""
        cfg = self.gw.tenant_config(request)
        grouping = cfg.grouping if cfg else None
        group_by = ", ".join(grouping.group_by) if grouping else "alertname, service"
        lines = ["route:", "  receiver: tocsin", f"  group_by: [{group_by}]", "receivers:"]
        lines += [f"  - name: {n}" for n in self._receivers(request)]
        return "\n".join(lines) + "\n"


async def bearer_or_basic(gw: Gateway, request: web.Request) -> Caller | web.Response:
    """A bearer token, or basic auth whose password is a token."""
    scheme, _, rest = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return await gw.bearer(request)
    try:
        user_pass = base64.b64decode(rest.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return unauthorized()
    password = user_pass.partition(":")[2]
    who = gw.credentials.bearer_caller(f"Bearer {password}", request.remote or "unknown")
    return who if who is not None else unauthorized()


def add_routes(gw: Gateway, app: web.Application) -> AlertmanagerAPI:
    api = AlertmanagerAPI(gw)
    api.add_routes(app)
    return api


def _flag(query: Any, name: str) -> bool:
    value = query.get(name, "true").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name}: expected true or false, got {value!r:.40}")
    return bool(value == "true")


def _filter(texts: list[str]) -> LabelPredicate:
    return compile_matchers([parse_filter(t) for t in texts])


def _receiver(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"receiver: invalid regular expression: {exc}") from None


def _gettable_alert(a: FiringAlert, silenced_by: list[str]) -> dict[str, Any]:
    return {
        "labels": a.labels,
        "annotations": {"summary": a.summary} if a.summary else {},
        "receivers": [{"name": a.receiver}],
        "fingerprint": a.fingerprint,
        "startsAt": a.starts_at,
        "updatedAt": a.updated_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "status": {"state": "suppressed" if silenced_by else "active",
                   "silencedBy": silenced_by, "inhibitedBy": [], "mutedBy": []},
    }  # fmt: skip


def _gettable_silence(s: KnownSilence, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": {"state": s.state(now)},
        "updatedAt": s.updated_at,
        "matchers": matchers_json(s.spec),
        "startsAt": s.spec.starts_at,
        "endsAt": s.spec.ends_at,
        "createdBy": s.spec.author,
        "comment": s.spec.comment,
    }


def _order(s: KnownSilence, now: datetime) -> tuple[int, float]:
    """Alertmanager's order: active by end, pending by start, expired latest first."""
    state = s.state(now)
    if state == "active":
        return 1, s.spec.ends_at.timestamp()
    if state == "pending":
        return 2, s.spec.starts_at.timestamp()
    return 3, -s.spec.ends_at.timestamp()


def _version() -> str:
    try:
        return version("tocsin")
    except PackageNotFoundError:
        return "0.0.0"
