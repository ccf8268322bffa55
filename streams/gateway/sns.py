"""POST /v1/sns: an Amazon SNS HTTPS subscription carrying CloudWatch alarms.

Authentication is the message itself: its topic must be one the gateway accepts
(``TOCSIN_SNS_TOPIC_ARNS``, the provider's own, or a tenant's ``intake.sns_topics``:
ARNs, ``*`` standing for any run of characters within one part, e.g.
``arn:aws:sns:*:123456789012:*`` for every topic of one account; the topic decides the
tenant of the alarm) and its SNS signature must verify (connectors/sources/sns.py). Only then:
- ``SubscriptionConfirmation``: the SubscribeURL (an SNS endpoint of AWS, this topic,
  this region) is fetched, which confirms the subscription; 200;
- ``UnsubscribeConfirmation``: logged, nothing fetched; 200;
- ``Notification``: the CloudWatch alarm in ``Message`` becomes an alert, written and
  acknowledged by Kafka before the 200. A verified message that is not a CloudWatch
  alarm is dead-lettered and answered 400 naming the field (SNS does not retry a 4xx:
  the message goes to the subscription's own dead-letter queue, if it has one).

A message published more than ``MAX_AGE`` ago is refused: SNS stops retrying an
HTTPS delivery within an hour, so an older one is a capture played back.
Nothing of a refused, unsigned or forged message is written anywhere.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import httpx
import structlog
from aiohttp import web

from connectors.sources.batches import BodyError, inflate
from connectors.sources.cloudwatch import decode_alarm
from connectors.sources.sns import (
    CertFetcher,
    SnsError,
    SnsMessage,
    SnsVerifier,
    check_subscribe_url,
    fetch_with,
    parse_message,
    production_client,
    published_at,
    topic_region,
)
from schemas import DecodeError
from streams.gateway.auth import Caller, credential_id
from streams.gateway.records import Outcome, RecordMaker
from streams.gateway.responses import json_response
from streams.gateway.tenancy import tenant_of

if TYPE_CHECKING:
    from streams.gateway.app import Gateway

log = structlog.get_logger(__name__)
MAX_BODY = 1024 * 1024  # SNS messages are at most 256 KB, JSON-escaped in the envelope
MAX_AGE = timedelta(hours=2)
MAX_AHEAD = timedelta(minutes=5)
SOURCE = "http:/v1/sns"
VERIFIED = web.RequestKey("sns", SnsMessage)  # the message _authenticate verified


@dataclass
class SnsIntake:
    """What /v1/sns trusts: the topics, and how certificates and confirmations are
    fetched (``fetch``: httpx against AWS; tests serve their own certificate)."""

    topics: frozenset[str] = frozenset()
    fetch: CertFetcher | None = None
    verifier: SnsVerifier = field(init=False)

    def __post_init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        if self.fetch is None:
            self._client = production_client()
            self.fetch = fetch_with(self._client)
        self.verifier = SnsVerifier(self.fetch)
        self._patterns = [_pattern(t) for t in self.topics]

    async def close(self, _: web.Application) -> None:
        if self._client is not None:
            await self._client.aclose()

    def allows(self, arn: str) -> bool:
        return any(p.fullmatch(arn) for p in self._patterns)

    @classmethod
    def from_env(cls, raw: str | None) -> SnsIntake:
        return cls(frozenset(t.strip() for t in (raw or "").split(",") if t.strip()))


def _pattern(topic: str) -> re.Pattern[str]:
    # fnmatch's `*` crosses ':'; an ARN pattern's `*` stays within one part
    return re.compile(fnmatch.translate(topic).replace(".*", "[^:]*"))


def add_routes(gw: Gateway, app: web.Application, intake: SnsIntake | None) -> None:
    sns = intake or SnsIntake()
    app.on_cleanup.append(sns.close)
    app.router.add_post("/v1/sns", gw.route("sns", partial(_handle, gw, sns),
                                            auth=partial(_authenticate, gw, sns)))  # fmt: skip


async def _authenticate(gw: Gateway, sns: SnsIntake, request: web.Request
                        ) -> Caller | web.Response:  # fmt: skip
    """The topic's credential id once the message verified, or the refusal."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return json_response(413, {"error": f"body: more than {MAX_BODY} bytes"})
    raw = await request.read()
    try:
        body = inflate(raw, request.headers.get("Content-Encoding"))
        if len(body) > MAX_BODY:
            raise BodyError(f"body: more than {MAX_BODY} bytes once inflated", "too_large")
        msg = await gw.decode(partial(parse_message, body))
        _check_header(request, msg)
        topic_region(msg.TopicArn)
        tenant = "default" if sns.allows(msg.TopicArn) else gw.tenancy.sns_tenant(msg.TopicArn)
        # an open gateway (loopback, or told so) with no topics listed takes any topic
        if tenant is None and (sns.topics or gw.tenancy.sns or not gw.insecure):
            raise SnsError(403, f"SnsMessage.TopicArn: {msg.TopicArn[:120]} is not a topic "
                                "this gateway accepts (TOCSIN_SNS_TOPIC_ARNS, or a tenant's "
                                "intake.sns_topics)")  # fmt: skip
        _check_time(gw, msg)
        await sns.verifier.verify(msg)
    except BodyError as exc:
        return json_response(413 if exc.reason == "too_large" else 400, {"error": str(exc)})
    except SnsError as exc:
        if exc.status >= 500:
            return json_response(exc.status, {"error": str(exc)}, {"Retry-After": "30"})
        return json_response(exc.status, {"error": str(exc)})
    request[VERIFIED] = msg
    return Caller(credential_id("sns", msg.TopicArn), tenant or "default")


def _check_header(request: web.Request, msg: SnsMessage) -> None:
    said = request.headers.get("x-amz-sns-message-type")
    if said is not None and said != msg.Type:
        raise SnsError(400, f"x-amz-sns-message-type: {said[:40]!r} but the message is a "
                            f"{msg.Type}")  # fmt: skip


def _check_time(gw: Gateway, msg: SnsMessage) -> None:
    at, now = published_at(msg), datetime.fromtimestamp(gw.clock(), UTC)
    if at < now - MAX_AGE or at > now + MAX_AHEAD:
        clock = f"{now:%Y-%m-%dT%H:%M:%SZ}"
        raise SnsError(400, f"SnsMessage.Timestamp: {msg.Timestamp[:40]} is not within "
                            f"{MAX_AGE} before the gateway's clock ({clock})")  # fmt: skip


async def _handle(gw: Gateway, sns: SnsIntake, request: web.Request) -> web.Response:
    msg = request[VERIFIED]
    if msg.Type == "SubscriptionConfirmation":
        return await _confirm(sns, msg)
    if msg.Type == "UnsubscribeConfirmation":
        log.info("sns_unsubscribed", topic=msg.TopicArn)
        return json_response(200, {"unsubscribed": msg.TopicArn})
    now = datetime.fromtimestamp(gw.clock(), UTC)
    out = await gw.decode(partial(_decode, gw, msg, await request.read(), now,
                                  tenant_of(request)))  # fmt: skip
    await gw.write(out.records, request)
    status, doc = out.answer()
    return json_response(200 if status == 202 else status, doc)


def _decode(gw: Gateway, msg: SnsMessage, raw: bytes, now: datetime, tenant: str) -> Outcome:
    out = Outcome("sns")
    try:
        alert = decode_alarm(msg.Message, msg.MessageId, now)
    except DecodeError as exc:
        out.refuse(f"SnsMessage.Message: {exc}", exc.reason)
        out.records.append(gw.letter(SOURCE, raw, out.reason, out.error_text()))
        return out
    RecordMaker(out, gw.catalog.name("alerts"), lambda a: a.fingerprint.encode(),
                tenant=tenant).add(0, alert)  # fmt: skip
    if out.rejected:  # the record would not fit in Kafka
        out.records.append(gw.letter(SOURCE, raw, out.reason, out.error_text()))
    return out


async def _confirm(sns: SnsIntake, msg: SnsMessage) -> web.Response:
    try:
        url = check_subscribe_url(msg)
        assert sns.fetch is not None
        await sns.fetch(url)
    except SnsError as exc:
        headers = {"Retry-After": "30"} if exc.status >= 500 else None
        return json_response(exc.status, {"error": str(exc)}, headers)
    log.info("sns_subscription_confirmed", topic=msg.TopicArn)
    return json_response(200, {"confirmed": msg.TopicArn})
