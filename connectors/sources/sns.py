"""Amazon SNS messages delivered to an HTTPS subscription, and their signatures.

Every message is verified before anything else is done with it: the signature
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, PKCS#1 v1.5) over AWS's string
to sign, with the public key of the certificate at ``SigningCertURL``. That URL must
be https on an SNS endpoint of AWS (``sns.<region>.amazonaws.com``, or ``.com.cn``)
in the topic's own region, naming a ``SimpleNotificationService-<hex>.pem`` file: a
message cannot bring its own certificate. ``SubscribeURL`` is held to the same hosts
before anyone fetches it.

A signature proves that SNS sent the message, not whose topic it came from: anybody
can publish to a topic of their own and subscribe the gateway. The gateway therefore
accepts only the topics it was told to (see streams/gateway/sns.py).

Certificates are fetched through an injected ``CertFetcher`` (httpx in production;
tests hand in one that serves a locally generated certificate, so the verification
itself is never switched off) and cached, bounded in number and time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.codec import describe_validation_error
from schemas.errors import TocsinError

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
# sns.us-east-1.amazonaws.com, sns.cn-north-1.amazonaws.com.cn, sns.us-gov-west-1...
_SNS_HOST = re.compile(r"sns\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(\.cn)?")
_CERT_PATH = re.compile(r"/SimpleNotificationService-[0-9a-f]{16,64}\.pem")
# arn:aws:sns:us-east-1:123456789012:topic (and the aws-cn / aws-us-gov partitions)
_TOPIC_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:sns:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):"
                        r"[A-Za-z0-9_\-]{1,256}(?:\.fifo)?")  # fmt: skip
MAX_CERT_BYTES = 16 * 1024
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsError(TocsinError):
    """A message refused: ``status`` (a 4xx, or 503 when AWS could not be reached) and a
    message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SnsMessage(BaseModel):
    """The JSON document SNS posts (fields as AWS names them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Type: MessageType
    MessageId: str = Field(min_length=1, max_length=128)
    TopicArn: str = Field(min_length=1, max_length=512)
    Message: str = Field(max_length=512 * 1024)
    Timestamp: str = Field(min_length=1, max_length=64)
    SignatureVersion: Literal["1", "2"]
    Signature: str = Field(min_length=1, max_length=4096)
    SigningCertURL: str = Field(min_length=1, max_length=1024)
    Subject: str | None = Field(default=None, max_length=1024)
    SubscribeURL: str | None = Field(default=None, max_length=4096)
    Token: str | None = Field(default=None, max_length=4096)
    UnsubscribeURL: str | None = Field(default=None, max_length=4096)


def parse_message(body: bytes) -> SnsMessage:
    try:
        return SnsMessage.model_validate_json(body)
    except ValidationError as exc:
        raise SnsError(400, describe_validation_error("SnsMessage", exc)) from exc


def string_to_sign(m: SnsMessage) -> bytes:
    """AWS's string to sign: ``name\\nvalue\\n`` for each field, in this order per type."""
    if m.Type == "Notification":
        fields = [("Message", m.Message), ("MessageId", m.MessageId)]
        if m.Subject is not None:
            fields.append(("Subject", m.Subject))
        fields += [("Timestamp", m.Timestamp), ("TopicArn", m.TopicArn), ("Type", m.Type)]
    else:
        if m.SubscribeURL is None or m.Token is None:
            missing = "SubscribeURL" if m.SubscribeURL is None else "Token"
            raise SnsError(400, f"SnsMessage.{missing}: required for a {m.Type}")
        fields = [("Message", m.Message), ("MessageId", m.MessageId),
                  ("SubscribeURL", m.SubscribeURL), ("Timestamp", m.Timestamp),
                  ("Token", m.Token), ("TopicArn", m.TopicArn), ("Type", m.Type)]  # fmt: skip
    return "".join(f"{k}\n{v}\n" for k, v in fields).encode()


def topic_region(arn: str) -> tuple[str, str]:
    """(region, account) of a topic ARN, or SnsError naming TopicArn."""
    match = _TOPIC_ARN.fullmatch(arn)
    if match is None:
        raise SnsError(400, f"SnsMessage.TopicArn: {arn[:80]!r} is not an SNS topic ARN")
    return match[1], match[2]


def sns_region(url: str, field: str) -> str:
    """The region of an https URL on an SNS endpoint of AWS, or SnsError naming ``field``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError as exc:
        raise SnsError(403, f"SnsMessage.{field}: not a URL ({exc})") from exc
    match = _SNS_HOST.fullmatch(host)
    if parts.scheme != "https" or match is None or port not in (None, 443) \
            or parts.username is not None or parts.password is not None:  # fmt: skip
        raise SnsError(403, f"SnsMessage.{field}: {url[:120]!r} is not https on an SNS "
                            "endpoint of AWS (sns.<region>.amazonaws.com)")  # fmt: skip
    return match[1]


def check_cert_url(m: SnsMessage) -> str:
    region = sns_region(m.SigningCertURL, "SigningCertURL")
    path = urlsplit(m.SigningCertURL)
    if not _CERT_PATH.fullmatch(path.path) or path.query or path.fragment:
        raise SnsError(403, f"SnsMessage.SigningCertURL: {m.SigningCertURL[:120]!r} does not "
                            "name an SNS signing certificate")  # fmt: skip
    topic, _ = topic_region(m.TopicArn)
    if region != topic:
        raise SnsError(403, f"SnsMessage.SigningCertURL: signed in {region}, but the topic "
                            f"is in {topic}")  # fmt: skip
    return m.SigningCertURL


def check_subscribe_url(m: SnsMessage) -> str:
    """SubscribeURL, when it is AWS's ConfirmSubscription for this very topic."""
    url = m.SubscribeURL or ""
    region = sns_region(url, "SubscribeURL")
    query = parse_qs(urlsplit(url).query)
    topic, _ = topic_region(m.TopicArn)
    if region != topic or query.get("Action") != ["ConfirmSubscription"] \
            or query.get("TopicArn") != [m.TopicArn]:  # fmt: skip
        raise SnsError(403, "SnsMessage.SubscribeURL: not a ConfirmSubscription of "
                            f"{m.TopicArn[:120]} in {topic}")  # fmt: skip
    return url


def published_at(m: SnsMessage) -> datetime:
    try:
        at = datetime.fromisoformat(m.Timestamp)
    except ValueError as exc:
        raise SnsError(400, f"SnsMessage.Timestamp: {m.Timestamp[:40]!r} is not an ISO 8601 "
                            "time") from exc  # fmt: skip
    if at.tzinfo is None:
        raise SnsError(400, f"SnsMessage.Timestamp: {m.Timestamp[:40]!r} has no time zone")
    return at.astimezone(UTC)


CertFetcher = Callable[[str], Awaitable[bytes]]


def fetch_with(client: httpx.AsyncClient) -> CertFetcher:
    """Fetch a certificate or a confirmation URL over https (TLS verified, no redirects,
    bounded): AWS's 4xx is the message's fault, anything else is AWS's unavailability."""

    async def fetch(url: str) -> bytes:
        try:
            async with client.stream("GET", url) as resp:
                if 400 <= resp.status_code < 500:
                    raise SnsError(403, f"{url[:120]} answered {resp.status_code}")
                if resp.status_code != 200:
                    raise SnsError(503, f"{url[:120]} answered {resp.status_code}: retry")
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_CERT_BYTES:
                        raise SnsError(403, f"{url[:120]} answered more than "
                                            f"{MAX_CERT_BYTES} bytes")  # fmt: skip
                return body
        except httpx.HTTPError as exc:
            raise SnsError(503, f"cannot reach {url[:120]}: {type(exc).__name__}") from exc

    return fetch


def production_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False,
                             headers={"User-Agent": "tocsin-sns"})  # fmt: skip


class SnsVerifier:
    """Checks a message's signature with the certificate its SigningCertURL names.

    Keys are cached per URL for ``ttl_s`` (AWS rotates the file name, never a file's
    content), at most ``max_certs`` of them; concurrent messages wait on one fetch."""

    def __init__(self, fetch: CertFetcher, *, max_certs: int = 32, ttl_s: float = 24 * 3600,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._fetch = fetch
        self._max = max_certs
        self._ttl = ttl_s
        self._clock = clock
        self._keys: OrderedDict[str, tuple[rsa.RSAPublicKey, float]] = OrderedDict()
        self._fetching: dict[str, asyncio.Future[rsa.RSAPublicKey]] = {}
        self.fetches = 0  # certificates fetched (tests, metrics)

    async def verify(self, m: SnsMessage) -> None:
        url = check_cert_url(m)
        try:
            signature = base64.b64decode(m.Signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SnsError(403, "SnsMessage.Signature: not base64") from exc
        key = await self._key(url)
        try:
            key.verify(signature, string_to_sign(m), padding.PKCS1v15(),
                       _HASHES[m.SignatureVersion]())  # fmt: skip
        except InvalidSignature as exc:
            raise SnsError(403, "SnsMessage.Signature: does not verify with the certificate "
                                "at SigningCertURL") from exc  # fmt: skip

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        now = self._clock()
        hit = self._keys.get(url)
        if hit is not None and hit[1] > now:
            self._keys.move_to_end(url)
            return hit[0]
        pending = self._fetching.get(url)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[rsa.RSAPublicKey] = asyncio.get_running_loop().create_future()
        self._fetching[url] = future
        try:
            key = self._load(await self._fetch(url), now)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            del self._fetching[url]
        future.set_result(key)
        self._keys[url] = (key, now + self._ttl)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)
        return key

    def _load(self, pem: bytes, now: float) -> rsa.RSAPublicKey:
        self.fetches += 1
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise SnsError(403, "SnsMessage.SigningCertURL: not a PEM certificate") from exc
        moment = datetime.fromtimestamp(now, UTC)
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise SnsError(403, "SnsMessage.SigningCertURL: the certificate is not valid now")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsError(403, "SnsMessage.SigningCertURL: not an RSA certificate")
        return key
