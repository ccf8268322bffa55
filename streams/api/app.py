"""`tocsin run api`: the REST API, its own worker beside the gateway.

It reads the store the projector keeps (SQLite or PostgreSQL) and changes nothing
itself: every action becomes a `Command` on the `commands` topic, answered 202 with the
command's id once Kafka acknowledged it (acks=all); the agents apply it and the
incident shows it once the projector has the new snapshot. Its own worker because the
gateway is the intake hot path and needs no database: an API outage, a slow report or
the store away never holds up alerts.

Every read and every command is of one tenant: the token's (a tenant's token never sees
another tenant's incident: 404, as for an id that does not exist). A token of the
``provider`` role chooses the tenant per request, with ``/api/v1/tenants/{tenant}/...``
(every route has that twin) or ``?tenant=``; naming a tenant with any other token, or a
tenant that does not exist, answers 404.

Errors: 400 names the field, 401 for a missing or unknown token, 403 when the token's
role may not do this, 404 for an unknown id, 409 for an action on a resolved incident
(or a silence already expired), 429/503 when Kafka cannot take the command, and 503
while the store is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import Command, encode
from schemas.api import IncidentQuery, ReportQuery
from schemas.config import Config
from schemas.errors import TocsinError
from streams.api.auth import Principal, Tokens
from streams.catalog import Catalog
from streams.gateway.writer import Backpressure, KafkaWriter, NotAcknowledged
from streams.health import Health
from streams.settings import KafkaSettings
from streams.store import queries

log = structlog.get_logger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", Principal)
# a client's name for one write, so that its retry is the same command (the console's
# forms carry one as a field and put it here)
IDEMPOTENCY = web.RequestKey("idempotency_key", str)
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_BODY = 64 * 1024
LIST_FIELDS = ("status", "priority", "service", "team")
CONSOLE = "/console"
TENANT_PREFIX = "/api/v1/tenants/{tenant}"
# query parameters of the plumbing, not of a route's own query model
PLUMBING = frozenset({"tenant", "format"})


class ApiError(TocsinError):
    """A request the API answers with a 4xx/5xx status naming the field."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field


def json(status: int, doc: Any, headers: dict[str, str] | None = None) -> web.Response:
    body = doc.model_dump_json().encode() if isinstance(doc, BaseModel) else orjson.dumps(doc)
    return web.Response(status=status, body=body, content_type="application/json",
                        headers=headers)  # fmt: skip


def problem(exc: ValidationError, where: str) -> ApiError:
    """400 naming the field: `body.matchers.0.value: ...`, `query.status.0: ...`."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    # a model's own check names its field first ("ends_at: ..."): that is the field
    named = re.match(r"^([a-z_]+): ", msg)
    if loc:
        return ApiError(400, f"{where}.{loc}: {msg}", loc)
    if named:
        return ApiError(400, f"{where}.{msg}", named.group(1))
    return ApiError(400, f"{where}: {msg}")


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # by route pattern (`/api/v1/incidents/{incident_id}`), never the raw path
        self.requests = Counter("tocsin_api_requests_total",
                                "Requests answered, by route and status.",
                                ["route", "code"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("tocsin_api_request_seconds", "Time to answer, by route.",
                                 ["route"], registry=self.registry)  # fmt: skip


@dataclass
class Api:
    settings: KafkaSettings
    engine: Engine
    cfg: Config
    health: Health = field(default_factory=Health)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ack_timeout: float = 10.0
    writer: KafkaWriter | None = None
    # every tenant's config (``cfg`` is the provider's own, tenant ``default``)
    tenants: Mapping[str, Config] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = ApiMetrics()
        self.configs: dict[str, Config] = {self.cfg.tenant: self.cfg, **self.tenants}
        self.tokens = Tokens(self.cfg, self.tenants)
        self.catalog = Catalog(self.settings)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="store")
        self.store_ok = True

    # -- plumbing ------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on a store thread."""

        def run() -> T:
            with self.engine.connect() as conn:
                return fn(conn, *args)

        try:
            result = await asyncio.get_running_loop().run_in_executor(self._pool, run)
        except (OperationalError, DBAPIError) as exc:
            self.store_ok = False
            log.warning("store_unavailable", error=str(exc).splitlines()[0][:300])
            raise ApiError(503, "the incident store is unreachable: retry later") from None
        self.store_ok = True
        return result

    async def send(self, cmd: Command, key: str) -> None:
        if self.writer is None:
            raise Backpressure("the API is starting", retry_after=1)
        await self.writer.write([(self.catalog.name("commands"), key.encode(), encode(cmd))])
        log.info("command_sent", command_id=cmd.event_id, action=cmd.action, actor=cmd.actor,
                 incident_id=cmd.incident_id)  # fmt: skip

    @staticmethod
    async def body(request: web.Request, model: type[M]) -> M:
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body: over {MAX_BODY} bytes")
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise problem(exc, "body") from None

    @staticmethod
    def principal(request: web.Request) -> Principal:
        return request[PRINCIPAL]

    def config(self, request: web.Request) -> Config:
        """The config of the tenant the request acts in (its users, schedules, SLAs)."""
        return self.configs.get(self.principal(request).tenant, self.cfg)

    def scoped(self, request: web.Request, who: Principal) -> Principal:
        """``who`` acting in the tenant the request names (path or ``?tenant=``): only the
        provider role may name another tenant than its token's."""
        named = request.match_info.get("tenant") or request.query.get("tenant")
        if not named or named == who.tenant:
            return who
        if not who.provider or named not in self.configs:
            raise ApiError(404, f"tenant: no tenant {named[:64]!r} for this token", "tenant")
        return who.acting_for(named)

    def command(self, request: web.Request, role: str = "responder", **fields: Any) -> Command:
        who = self.principal(request)
        if not who.may(role):
            raise ApiError(403, f"role {who.role!r} may not do this (needs {role})")
        key = request.get(IDEMPOTENCY) or request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None:
            fields["event_id"] = idempotent_id(who, request, key)
        try:
            return Command(actor=who.user, at=self.clock(), origin="api", tenant=who.tenant,
                           **fields)  # fmt: skip
        except ValidationError as exc:
            raise problem(exc, "body") from None

    # -- the application -----------------------------------------------------------------

    def base_app(self) -> web.Application:
        """The application with health, errors and authentication; routes come from
        server.py (`application`), which imports the route modules."""
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._prometheus)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        self.health.add_check("store", lambda: (self.store_ok, "reachable" if self.store_ok
                                                else "unreachable"))  # fmt: skip
        return app

    async def _start(self, _: web.Application) -> None:
        from streams.counted_nodes import some_counted
        from streams.kafka import make_producer

        if self.writer is None:
            producer = make_producer(self.settings, **{
                "message.timeout.ms": int(max(self.ack_timeout * 3, 30) * 1000),
                "error_cb": lambda err: self.writer.on_error(err) if self.writer else None,
            })  # fmt: skip
            self.writer = KafkaWriter(producer, self.ack_timeout, 10_000, name="api/producer",
                                      cluster_answers=partial(some_counted, self.settings),
                                      ).start()  # fmt: skip
        self.health.add_check("kafka", lambda: (not self.writer.broker_down, "producer")
                              if self.writer else (False, "not started"))  # fmt: skip

    async def _stop(self, _: web.Application) -> None:
        if self.writer is not None:
            self.writer.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        path = request.path
        # the console authenticates its pages itself (a session cookie, not a bearer token)
        # status pages check their own audience (streams/status/routes.py)
        public = path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json") or (
            path == CONSOLE or path.startswith((CONSOLE + "/", "/status/"))
        )
        try:
            if not public:
                who = self.tokens.principal(request.headers.get("Authorization"))
                if who is None:
                    return self._observed(request, started, json(
                        401, {"error": "missing or unknown API token"},
                        {"WWW-Authenticate": "Bearer"}))  # fmt: skip
                request[PRINCIPAL] = self.scoped(request, who)
            resp = await handler(request)
        except ApiError as exc:
            resp = json(exc.status, {"error": exc.error, "field": exc.field},
                        {"Retry-After": "5"} if exc.status == 503 else None)  # fmt: skip
        except Backpressure as exc:
            resp = json(429, {"error": f"{exc}: retry later"},
                        {"Retry-After": str(exc.retry_after)})  # fmt: skip
        except NotAcknowledged as exc:
            resp = json(503, {"error": f"Kafka did not acknowledge the command: {exc}"},
                        {"Retry-After": "5"})  # fmt: skip
        except web.HTTPException as exc:
            if exc.status < 400 or not path.startswith("/api/"):
                raise  # the console's redirects and pages answer as they are
            # aiohttp's own refusals (no such route, a method the route lacks, a body past
            # the limit) in the API's shape, so a client parses every error the same way
            resp = json(exc.status, {"error": f"{exc.reason}: {request.method} {path}"},
                        {k: v for k, v in exc.headers.items() if k == "Allow"})  # fmt: skip
        return self._observed(request, started, resp)

    def _observed(self, request: web.Request, started: float,
                  resp: web.StreamResponse) -> web.StreamResponse:  # fmt: skip
        took = time.perf_counter() - started
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "(none)"
        self.metrics.requests.labels(route=route, code=str(resp.status)).inc()
        self.metrics.latency.labels(route=route).observe(took)
        log.debug("api_request", method=request.method, path=request.path,
                  ms=round(took * 1000, 2))  # fmt: skip
        return resp

    async def _healthz(self, request: web.Request) -> web.Response:
        self.health.beat()
        ok, info = self.health.live()
        return json(200 if ok else 503, {"ok": ok, **info})

    async def _prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

    async def _readyz(self, request: web.Request) -> web.Response:
        self.health.beat()
        with contextlib.suppress(ApiError):
            await self.db(queries.ping)
        ok, info = self.health.ready()
        return json(200 if ok else 503, {"ok": ok, **info})


def idempotent_id(who: Principal, request: web.Request, key: str) -> str:
    """The command id of a write the client named `key`: the same for its retries, so
    the agents apply it once (and a silence or status update keeps one id); scoped to
    the caller and the route, so two clients' keys never meet."""
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, f"header {IDEMPOTENCY_HEADER}: 1 to 255 printable ASCII "
                       "characters without spaces", IDEMPOTENCY_HEADER)  # fmt: skip
    seed = "\x00".join((who.tenant, who.user, request.method, request.path, key))
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


# -- query strings ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta | None:
    """`30d`, `12h`, `90m`: a duration, or None when `text` is not one."""
    m = _DURATION.match(text.strip())
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m else None


def incident_query(request: web.Request) -> IncidentQuery:
    doc: dict[str, Any] = {}
    for name in set(request.query) - PLUMBING:
        values = request.query.getall(name)
        if name in LIST_FIELDS:
            doc[name] = [v for raw in values for v in raw.split(",") if v]
        elif len(values) > 1:
            raise ApiError(400, f"query.{name}: given more than once", name)
        else:
            doc[name] = values[0]
    try:
        return IncidentQuery.model_validate(doc)
    except ValidationError as exc:
        raise problem(exc, "query") from None


def report_query(request: web.Request) -> ReportQuery:
    doc: dict[str, Any] = {k: v for k, v in request.query.items() if k not in PLUMBING}
    since = doc.get("since")
    if isinstance(since, str) and (d := duration(since)) is not None:
        doc["since"] = d
    try:
        return ReportQuery.model_validate(doc)
    except ValidationError as exc:
        raise problem(exc, "query") from None
