"""`tocsin run gateway`: one aiohttp server for sources and for Slack.

Every accepted record is answered only after Kafka acknowledged it (acks=all); a full
producer queue or an unreachable broker answers 429 with Retry-After instead of
buffering without bound, and a write not acknowledged in time answers 503. Invalid
input is named by position and field in a 4xx, and the request's bytes (a bounded
prefix, with their size and digest) go to `deadletter` once. Bodies are decoded on
decoding threads, never on the event loop. Routes live in sources.py and slack.py,
which this module registers; they answer with responses.py and need nothing of this
module at run time. It holds what they share: the writer, authentication and rate limits
around every route (``route``), dead letters, health and metrics. A request that does not
authenticate writes nothing to Kafka, not even a dead letter: only credentials may put
bytes on the topics. The credential also decides the tenant of everything the request
writes (tenancy.py), and each tenant has its own quota of requests and items per second
(limits.py), so one tenant's flood is answered 429 before it can delay another's alerts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connectors.slack.auth import ResponderDirectory, StaticDirectory
from connectors.slack.signature import SignatureVerifier
from schemas.config import Config
from schemas.types import MAX_AHEAD, MAX_BEHIND
from streams.catalog import Catalog
from streams.counted_nodes import some_counted
from streams.gateway import (
    alertmanager_api,
    grafana_route,
    heartbeats,
    monitoring,
    slack,
    sns,
    sources,
)
from streams.gateway.auth import Caller, Credentials, routing_key_of
from streams.gateway.decoding import DecoderLost, Decoders, Topics
from streams.gateway.decoding import letter as dead_letter_record
from streams.gateway.directory import ConfigDirectory, IncidentIndex, provider_staff
from streams.gateway.limits import (
    RateLimit,
    RateLimiter,
    TenantLimit,
    TenantQuotas,
    default_tenant_limit,
    retry_after,
)
from streams.gateway.records import Outcome
from streams.gateway.responses import json_response, rate_limited, unauthorized
from streams.gateway.sns import SnsIntake
from streams.gateway.tenancy import CALLER, Tenancy, tenant_of
from streams.gateway.writer import (
    Backpressure,
    KafkaWriter,
    NotAcknowledged,
    Record,
    RecordTooLarge,
)
from streams.health import Health
from streams.kafka import make_producer
from streams.metrics import WorkerMetrics
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# who sent the request (its credential id and tenant) or the refusal to send instead
Authenticate = Callable[[web.Request], Awaitable[Caller | web.Response]]
Throttled = Callable[[float], web.Response]
T = TypeVar("T")
MAX_BODY = 16 * 1024 * 1024
"""Bytes of one request body as sent (the decoders bound the inflated body the same)."""
SWITCH_INTERVAL = 0.001
# aiohttp's own inflation hangs the request on some corrupt deflate bodies and has no
# bound of its own; the source decoders inflate with a size limit instead
RUNNER_ARGS: dict[str, Any] = {"auto_decompress": False}


class GatewayMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.requests = Counter("tocsin_gateway_requests_total", "HTTP requests by route/code.",
                                ["route", "code"], registry=r)  # fmt: skip
        self.latency = Histogram("tocsin_gateway_request_seconds", "Request latency.",
                                 ["route"], registry=r)  # fmt: skip
        self.accepted = Counter("tocsin_gateway_records_total", "Records acknowledged by Kafka.",
                                ["topic"], registry=r)  # fmt: skip
        self.skipped = Counter("tocsin_gateway_skipped_total",
                               "Values with no usable number (stale markers, strings).",
                               ["route", "reason"], registry=r)  # fmt: skip
        self.refused = Counter("tocsin_gateway_auth_refused_total",
                               "Requests refused for missing or wrong credentials.",
                               ["route", "code"], registry=r)  # fmt: skip
        self.throttled = Counter("tocsin_gateway_throttled_total",
                                 "Requests answered 429 by a credential's rate limit.",
                                 ["route"], registry=r)  # fmt: skip
        self.tenant_throttled = Counter("tocsin_gateway_tenant_throttled_total",
                                        "Requests answered 429 by their tenant's quota.",
                                        ["tenant", "quota"], registry=r)  # fmt: skip
        self.tenant_items = Counter("tocsin_gateway_tenant_items_total",
                                    "Records acknowledged by Kafka, by tenant.",
                                    ["tenant"], registry=r)  # fmt: skip


@dataclass
class Gateway:
    settings: KafkaSettings
    tokens: set[str]
    verifier: SignatureVerifier | None
    config: Config | None
    health: Health
    metrics: GatewayMetrics
    clock: Callable[[], float] = time.time
    directory: ResponderDirectory | None = None
    pagerduty_keys: set[str] = field(default_factory=set)
    ack_timeout: float = 10.0
    queue_max: int = 100_000
    response_url_prefix: str = "https://hooks.slack.com/"
    index: IncidentIndex | None = None
    # routes whose kind of credential is not configured let anyone in (see auth.py)
    insecure: bool = False
    rate_limit: RateLimit = field(default_factory=RateLimit)
    max_ahead: timedelta = MAX_AHEAD
    max_behind: timedelta = MAX_BEHIND
    # an intake's own bearer tokens (``zabbix``, ``checkmk``), valid on that route only
    source_tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    sns_intake: SnsIntake | None = None  # None: AWS's certificates, no topic accepted
    # the installation's tenants (``config``, when given, is tenant ``default``'s)
    tenants: Mapping[str, Config] = field(default_factory=dict)
    # every tenant's quota; None: the installation's default (on with several tenants)
    tenant_limit: TenantLimit | None = None
    quota_clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.settings)
        configs = dict(self.tenants)
        if self.config is not None:
            configs.setdefault("default", self.config)
        self.config = self.config or configs.get("default")
        env = frozenset(self.tokens) | frozenset(self.pagerduty_keys) | frozenset().union(
            *self.source_tokens.values())  # fmt: skip
        self.tenancy = Tenancy.of(configs, env)
        self.credentials = Credentials(frozenset(self.tokens), frozenset(self.pagerduty_keys),
                                       open=self.insecure,
                                       tenants=self.tenancy.secrets)  # fmt: skip
        self.limiter = RateLimiter(self.rate_limit)
        limit = self.tenant_limit or default_tenant_limit(len(configs))
        self.quotas = TenantQuotas(limit, self.tenancy.limits(limit), self.quota_clock)
        self.directories: dict[str, ResponderDirectory] = {
            tenant: ConfigDirectory(c) for tenant, c in configs.items()}  # fmt: skip
        if self.directory is None:
            self.directory = ConfigDirectory(self.config) if self.config else StaticDirectory()
        self.directories["default"] = self.directory
        self.provider_staff = provider_staff(configs.get("default"))
        self.writer: KafkaWriter | None = None
        self.topics = Topics(*(self.catalog.name(t) for t in ("metrics", "logs", "alerts",
                                                               "deadletter")))  # fmt: skip
        # bodies decoded at once, off the event loop (big ones in processes): health
        # checks and small requests stay answered, and decoding memory is bounded by
        # this many requests' worth
        self.decoders = Decoders()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        sources.add_routes(self, app)
        alertmanager_api.add_routes(self, app)
        grafana_route.add_routes(self, app)
        monitoring.add_routes(self, app)
        slack.add_routes(self, app)
        sns.add_routes(self, app, self.sns_intake)
        heartbeats.add_routes(self, app)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.prometheus)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        producer = make_producer(self.settings, **{
            "queue.buffering.max.messages": self.queue_max, "linger.ms": 2,
            "message.timeout.ms": int(max(self.ack_timeout * 3, 30) * 1000),
            "error_cb": lambda err: self.writer.on_error(err) if self.writer else None,
        })  # fmt: skip
        self.writer = KafkaWriter(
            producer,
            self.ack_timeout,
            self.queue_max,
            probe_topic=self.topics.deadletter,
            cluster_answers=partial(some_counted, self.settings),
        ).start()
        # the decoding threads hold the GIL in slices of this length: 1 ms (instead of
        # 5) lets the event loop answer health checks and small requests in between
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.health.add_check("kafka", lambda: (not self.writer.broker_down, "producer")
                              if self.writer else (False, "not started"))  # fmt: skip
        if self.index is None:
            self.index = IncidentIndex(self.settings, self.catalog.name("incidents")).start()

    async def _stop(self, _: web.Application) -> None:
        if self.index is not None:
            self.index.stop()
        if self.writer is not None:
            self.writer.close()
        self.decoders.shutdown()

    def route(self, name: str, handler: Handler, auth: Authenticate | None = None,
              throttled: Throttled | None = None) -> Handler:  # fmt: skip
        """Authentication (bearer tokens unless ``auth`` says otherwise), the caller's rate
        limit, metrics, and Kafka trouble turned into 429/503 answers, around a handler."""
        authenticate = auth or self.bearer
        too_many = throttled or rate_limited

        async def wrapped(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                who = await authenticate(request)
                if isinstance(who, web.Response):
                    self.metrics.refused.labels(route=name, code=str(who.status)).inc()
                    resp: web.StreamResponse = who
                elif (wrong := self.tenancy.named_mismatch(request, who)) is not None:
                    self.metrics.refused.labels(route=name, code=str(wrong.status)).inc()
                    resp = wrong
                elif wait := self.limiter.take(who.id):
                    self.metrics.throttled.labels(route=name).inc()
                    resp = too_many(wait)
                elif who.tenant is not None and (wait := self.quotas.request(who.tenant)):
                    self.metrics.tenant_throttled.labels(tenant=who.tenant, quota="requests").inc()
                    resp = too_many(wait)
                else:
                    request[CALLER] = who
                    resp = await handler(request)
            except Backpressure as exc:
                resp = json_response(429, {"error": f"{exc}: retry later"},
                                     {"Retry-After": str(exc.retry_after)})  # fmt: skip
            except RequestPayloadError as exc:  # a body aiohttp itself could not inflate
                resp = json_response(400, {"error": f"unreadable body: {exc}"})
            except RecordTooLarge as exc:
                resp = json_response(413, {"error": str(exc)})
            except DecoderLost as exc:
                log.error("decoder_lost", route=name, error=str(exc))
                resp = json_response(503, {"error": f"{exc}: retry later"}, {"Retry-After": "5"})
            except NotAcknowledged as exc:
                log.warning("kafka_write_failed", route=name, error=str(exc))
                resp = json_response(503, {"error": f"Kafka did not acknowledge: {exc}"},
                                     {"Retry-After": "5"})  # fmt: skip
            self.metrics.requests.labels(route=name, code=str(resp.status)).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - started)
            return resp

        return wrapped

    async def write(self, records: list[Record], request: web.Request | None = None) -> None:
        """Write ``records`` (acknowledged by Kafka). With the ``request`` they came from,
        its items are charged to its tenant's quota first: over it, nothing of the request
        is written and it is answered 429 (the sender retries it whole)."""
        if self.writer is None:
            raise Backpressure("gateway is starting", retry_after=1)
        if request is not None:
            tenant = tenant_of(request)
            items = sum(1 for topic, _, _ in records if topic != self.topics.deadletter)
            if wait := self.quotas.items(tenant, items):
                self.metrics.tenant_throttled.labels(tenant=tenant, quota="items").inc()
                raise Backpressure(f"tenant {tenant!r} is over its quota of items per second",
                                   retry_after=int(retry_after(wait)))  # fmt: skip
        await self.writer.write(records)
        for topic, count in Tally(topic for topic, _, _ in records).items():
            self.metrics.accepted.labels(topic=topic).inc(count)
        if request is not None:
            self.metrics.tenant_items.labels(tenant=tenant_of(request)).inc(len(records))

    def tenant_config(self, request: web.Request) -> Config | None:
        """The config of the request's tenant (None: the gateway runs without one)."""
        return self.tenancy.config(tenant_of(request)) or (
            self.config if tenant_of(request) == "default" else None)  # fmt: skip

    def authorized(self, request: web.Request) -> bool:
        """Bearer tokens (constant-time compare); none configured: only an open gateway."""
        return self._bearer_id(request) is not None

    def _bearer_id(self, request: web.Request) -> Caller | None:
        return self.credentials.bearer_caller(request.headers.get("Authorization"),
                                              _peer(request))  # fmt: skip

    async def bearer(self, request: web.Request) -> Caller | web.Response:
        """The default authentication of every route: ``Authorization: Bearer <token>``."""
        who = self._bearer_id(request)
        if who is not None:
            return who
        if not self.credentials.has_tokens:
            return json_response(403, {"error": "no bearer tokens are configured on this "
                                       "gateway (TOCSIN_GATEWAY_TOKENS): refused"})  # fmt: skip
        return unauthorized()

    async def pagerduty(self, request: web.Request) -> Caller | web.Response:
        """/v2/enqueue authenticates like PagerDuty, by the event's ``routing_key`` (an
        intake key or a gateway token), or by a bearer token; refused in PagerDuty's shape."""
        header, peer = request.headers.get("Authorization"), _peer(request)
        who = self.credentials.pagerduty_caller(header, None, peer)
        if who is None:
            raw = await request.read()
            key = routing_key_of(raw, request.headers.get("Content-Encoding"))
            who = self.credentials.pagerduty_caller(header, key, peer)
        if who is not None:
            return who
        return json_response(400, {"status": "invalid event", "message": "Event object is invalid",
                                   "errors": ["Invalid routing key"]})  # fmt: skip

    async def decode(self, work: Callable[[], T], size: int = 0) -> T:
        """Run ``work`` (decode a body into an Outcome) off the event loop, and count the
        dead letter the Outcome holds. A body of ``size`` bytes from PROCESS_BODY on is
        decoded in a process, so ``work`` must then be picklable (decoding.py's functions
        of a ``Topics``); the default size keeps it on a thread."""
        done = await self.decoders.run(size, work)
        out = done[0] if isinstance(done, tuple) else done
        if isinstance(out, Outcome) and out.letter_source is not None:
            self.metrics.dead_letters.labels(topic=out.letter_source, reason=out.reason).inc()
        return done

    def letter(self, source: str, raw: bytes, reason: str, error: str) -> Record:
        """A dead-letter record for ``raw`` (counted), to write with the request's others.
        The letter keeps a bounded prefix of ``raw`` with its size and digest, so it
        always fits in one Kafka record."""
        self.metrics.dead_letters.labels(topic=source, reason=reason).inc()
        return dead_letter_record(self.topics.deadletter, source, raw, reason, error)

    async def dead_letter(self, source: str, raw: bytes, reason: str, error: str) -> None:
        await self.write([self.letter(source, raw, reason, error)])

    async def healthz(self, request: web.Request) -> web.Response:
        self.health.beat()  # the event loop answers: that is the gateway's liveness
        ok, info = self.health.live()
        return json_response(200 if ok else 503, {"ok": ok, **info})

    async def readyz(self, request: web.Request) -> web.Response:
        self.health.beat()
        ok, info = self.health.ready()
        return json_response(200 if ok else 503, {"ok": ok, **info})

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"
