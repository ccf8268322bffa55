"""`tocsin run gateway`: one HTTP server for sources and for Slack.

Every accepted record is answered only after Kafka acknowledged it (acks=all); a full
producer queue answers 429 with Retry-After instead of buffering without bound, and a
broker that does not acknowledge in time answers 503. Invalid items are named by
position and field in a 400, and their original bytes go to `deadletter`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
import structlog
from aiohttp import web
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connectors.slack.actions import ActionError, from_interaction, from_slash
from connectors.slack.signature import SignatureError, SignatureVerifier
from connectors.sources.batches import BodyError, decode_batch, inflate
from schemas import DeadLetter, LogRecord, MetricSample, encode
from schemas.config import Config
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import make_producer
from streams.metrics import WorkerMetrics
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
ACK_TIMEOUT_S = 10.0


class GatewayMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.requests = Counter("tocsin_gateway_requests_total", "HTTP requests by route/code.",
                                ["route", "code"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("tocsin_gateway_request_seconds", "Request latency.",
                                 ["route"], registry=self.registry)  # fmt: skip


class Backpressure(Exception):
    """The local producer queue is full."""


class KafkaWriter:
    """Produce and await Kafka's acknowledgement from asyncio."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    async def write(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for topic, key, value in records:
            fut: asyncio.Future[None] = loop.create_future()

            def done(err: KafkaError | None, _msg: Message, fut: asyncio.Future[None] = fut
                     ) -> None:  # fmt: skip
                def settle() -> None:
                    if fut.done():
                        return
                    if err is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(RuntimeError(str(err)))

                loop.call_soon_threadsafe(settle)

            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=done)
            except BufferError as exc:
                raise Backpressure() from exc
            futures.append(fut)
        await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_S)

    async def pump(self) -> None:
        while True:
            self.producer.poll(0)
            await asyncio.sleep(0.002)


@dataclass
class Gateway:
    settings: KafkaSettings
    tokens: set[str]
    verifier: SignatureVerifier | None
    config: Config | None
    health: Health
    metrics: GatewayMetrics
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.settings)
        bounded = {"queue.buffering.max.messages": 100_000, "linger.ms": 2}
        self.writer = KafkaWriter(make_producer(self.settings, **bounded))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/metrics", self._timed("metrics", self.metrics_in))
        app.router.add_post("/v1/logs", self._timed("logs", self.logs_in))
        app.router.add_post("/slack/interactions", self._timed("slack", self.slack_interaction))
        app.router.add_post("/slack/commands", self._timed("slack", self.slack_command))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.prometheus)
        app.on_startup.append(self._start_pump)
        return app

    async def _start_pump(self, app: web.Application) -> None:
        app["pump"] = asyncio.create_task(self.writer.pump())

    def _timed(self, route: str, handler: Callable[[web.Request], Awaitable[web.Response]]
               ) -> Callable[[web.Request], Awaitable[web.Response]]:  # fmt: skip
        async def wrapped(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                resp = await handler(request)
            except Backpressure:
                resp = _json(429, {"error": "Kafka producer queue full, retry later"},
                             {"Retry-After": "1"})  # fmt: skip
            except (TimeoutError, RuntimeError) as exc:
                log.warning("kafka_write_failed", error=str(exc))
                resp = _json(503, {"error": "Kafka did not acknowledge the write; retry"},
                             {"Retry-After": "5"})  # fmt: skip
            self.metrics.requests.labels(route=route, code=str(resp.status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)
            return resp

        return wrapped

    # -- sources ------------------------------------------------------------------

    async def metrics_in(self, request: web.Request) -> web.Response:
        return await self._batch(
            request, MetricSample, "metrics", lambda m: m.series_key().encode()
        )

    async def logs_in(self, request: web.Request) -> web.Response:
        return await self._batch(
            request, LogRecord, "logs", lambda r: r.labels.get("service", r.source).encode()
        )

    async def _batch(self, request: web.Request, model: type[Any], topic: str,
                     key: Callable[[Any], bytes]) -> web.Response:  # fmt: skip
        if not self._authorized(request):
            return _json(401, {"error": "missing or invalid bearer token"},
                         {"WWW-Authenticate": "Bearer"})  # fmt: skip
        raw = await request.read()
        try:
            body = inflate(raw, request.headers.get("Content-Encoding"))
            good, bad = decode_batch(model, body, request.content_type)
        except BodyError as exc:
            await self._dead_letter(f"http:/v1/{topic}", raw, "invalid_body", str(exc))
            return _json(400, {"error": str(exc)})
        records = [(self.catalog.name(topic), key(item), encode(item)) for item in good]
        await self.writer.write(records)
        for e in bad:
            await self._dead_letter(f"http:/v1/{topic}", e.raw, "validation", e.message)
        if bad:
            errors = [{"position": e.position, "error": e.message} for e in bad[:100]]
            return _json(400, {"accepted": len(good), "rejected": len(bad), "errors": errors})
        return _json(202, {"accepted": len(good)})

    def _authorized(self, request: web.Request) -> bool:
        if not self.tokens:
            return True  # no tokens configured: an open local gateway (development)
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:].strip() in self.tokens

    async def _dead_letter(self, source: str, raw: bytes, reason: str, error: str) -> None:
        letter = DeadLetter(source_topic=source, value=raw[:16 * 1024 * 1024], reason=reason,
                            error=error[:8000], stage="gateway", worker="gateway")  # fmt: skip
        await self.writer.write([(self.catalog.name("deadletter"), None, encode(letter))])
        self.metrics.dead_letters.labels(topic=source, reason=reason).inc()

    # -- Slack --------------------------------------------------------------------

    async def _verified(self, request: web.Request) -> bytes | web.Response:
        raw = await request.read()
        if self.verifier is None:
            return _json(503, {"error": "SLACK_SIGNING_SECRET is not configured"})
        try:
            headers = request.headers
            self.verifier.verify(headers.get("X-Slack-Request-Timestamp"),
                                 headers.get("X-Slack-Signature"), raw, self.clock())  # fmt: skip
        except SignatureError as exc:
            return _json(401, {"error": str(exc)})
        return raw

    async def slack_interaction(self, request: web.Request) -> web.Response:
        raw = await self._verified(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            payload = orjson.loads(parse_qs(raw.decode())["payload"][0])
            command = from_interaction(payload, datetime.now(UTC))
        except (KeyError, ValueError, orjson.JSONDecodeError) as exc:
            return _ephemeral(f"Sorry, tocsin could not read that action: {exc}")
        return await self._submit(command.actor, command)

    async def slack_command(self, request: web.Request) -> web.Response:
        raw = await self._verified(request)
        if isinstance(raw, web.Response):
            return raw
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        try:
            command = from_slash(form.get("text", ""), form.get("user_id", ""), datetime.now(UTC))
        except ActionError as exc:
            return _ephemeral(str(exc))
        if command is None:
            return _ephemeral("tocsin: see the incident channel for open incidents and on-call.")
        return await self._submit(command.actor, command)

    async def _submit(self, slack_user: str, command: Any) -> web.Response:
        if not self._may_act(slack_user):
            return _ephemeral("You are not a responder for this incident's team.")
        key = (command.incident_id or "").encode()
        await self.writer.write([(self.catalog.name("commands"), key, encode(command))])
        return _ephemeral(f"tocsin: {command.action} of {command.incident_id} accepted.")

    def _may_act(self, slack_user: str) -> bool:
        """Members and configured responders of a team may act (any team, for now: the
        gateway does not yet know which team owns each incident)."""
        if self.config is None:
            return True
        users = {u.id for u in self.config.users if u.slack_id == slack_user}
        allowed = {m for t in self.config.teams for m in [*t.members, *t.responders]}
        return bool(users & allowed)

    # -- health -------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        ok, info = self.health.live()
        return _json(200 if ok else 503, {"ok": ok, **info})

    async def readyz(self, request: web.Request) -> web.Response:
        ok, info = self.health.ready()
        return _json(200 if ok else 503, {"ok": ok, **info})

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip


def _json(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
          ) -> web.Response:  # fmt: skip
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json",
                        headers=headers)  # fmt: skip


def _ephemeral(text: str) -> web.Response:
    return _json(200, {"response_type": "ephemeral", "text": text})
