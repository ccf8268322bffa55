"""Who may write through the gateway: bearer tokens, PagerDuty routing keys, open mode.

Every route authenticates. A route whose kind of credential is not configured at all is
refused, unless the gateway was started in open (insecure) mode, which the CLI allows
only on loopback or when told so explicitly. What an authenticated request is known by
(its credential id) keys the rate limits; it is a digest, never the secret itself, so
it may appear in logs and metrics.

Every credential belongs to one tenant, and the tenant of every record a request writes
is that credential's. The secrets of the environment (``TOCSIN_GATEWAY_TOKENS``, ...)
belong to the provider's own tenant ``default``; the tenants' own credentials are
SHA-256 digests in their config (``intake:``, schemas/config/intake.py), looked up by
the digest of what was presented.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from connectors.sources.body import inflate
from schemas import DecodeError

# PagerDuty refuses events above 512 KB; an unauthenticated body is never inflated
# further than this to look for its key
MAX_EVENT = 1024 * 1024
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: ``id`` keys its rate limit (a digest, never the secret) and
    ``tenant`` owns what it writes (None: decided by the payload, as Slack's team is)."""

    id: str
    tenant: str | None = DEFAULT_TENANT


@dataclass(frozen=True)
class TenantSecrets:
    """The tenants' own credentials, by the SHA-256 digest of the secret: bearer tokens
    (-> tenant and the one route they are limited to, or None) and PagerDuty keys."""

    tokens: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    pagerduty_keys: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tokens or self.pagerduty_keys)

    def token(self, secret: str, route: str | None = None) -> Caller | None:
        found = self.tokens.get(digest(secret))
        if found is None or (found[1] is not None and found[1] != route):
            return None
        kind = "source" if found[1] else "token"
        return Caller(credential_id(kind, secret), found[0])

    def pagerduty(self, key: str) -> Caller | None:
        tenant = self.pagerduty_keys.get(digest(key))
        return Caller(credential_id("routing_key", key), tenant) if tenant else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode(errors="replace")).hexdigest()


def credential_id(kind: str, secret: str) -> str:
    return f"{kind}:{hashlib.sha256(secret.encode(errors='replace')).hexdigest()[:12]}"


def _matches(given: str, known: Iterable[str]) -> bool:
    """Constant-time against every known secret, so timing tells nothing about which."""
    raw = given.encode(errors="replace")
    found = False
    for secret in known:
        found |= hmac.compare_digest(raw, secret.encode())
    return found


@dataclass(frozen=True)
class Credentials:
    """``tokens``: bearer tokens for every route; ``pagerduty_keys``: routing keys
    accepted on /v2/enqueue; ``open``: routes with no credential configured let
    anyone in (known by address, for the rate limits)."""

    tokens: frozenset[str] = frozenset()
    pagerduty_keys: frozenset[str] = frozenset()
    open: bool = False
    tenants: TenantSecrets = field(default_factory=TenantSecrets)

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.pagerduty_keys or self.tenants)

    @property
    def has_tokens(self) -> bool:
        return bool(self.tokens or self.tenants.tokens)

    def bearer(self, authorization: str | None, peer: str) -> str | None:
        """The credential id of a request with ``Authorization: Bearer <token>``."""
        who = self.bearer_caller(authorization, peer)
        return who.id if who is not None else None

    def bearer_caller(self, authorization: str | None, peer: str) -> Caller | None:
        """Who sent ``Authorization: Bearer <token>``: the provider's or a tenant's token."""
        if not self.has_tokens:
            return Caller(f"open:{peer}") if self.open else None
        return self._token(_bearer_token(authorization))

    def _token(self, token: str | None, route: str | None = None) -> Caller | None:
        if token is None:
            return None
        if self.tokens and _matches(token, self.tokens):
            return Caller(credential_id("token", token))
        return self.tenants.token(token, route)

    def pagerduty(self, authorization: str | None, routing_key: str | None,
                  peer: str) -> str | None:  # fmt: skip
        who = self.pagerduty_caller(authorization, routing_key, peer)
        return who.id if who is not None else None

    def pagerduty_caller(self, authorization: str | None, routing_key: str | None,
                         peer: str) -> Caller | None:  # fmt: skip
        """/v2/enqueue: a configured routing key, a bearer token as routing key or header."""
        if not self.configured:
            return Caller(f"open:{peer}") if self.open else None
        who = self._token(_bearer_token(authorization))
        if who is not None or routing_key is None:
            return who
        if self.pagerduty_keys and _matches(routing_key, self.pagerduty_keys):
            return Caller(credential_id("routing_key", routing_key))
        return self.tenants.pagerduty(routing_key) or self._token(routing_key)

    def source(self, route: str, own: frozenset[str], authorization: str | None
               ) -> Caller | None:  # fmt: skip
        """An intake's own token (the environment's, or a tenant's limited to ``route``)."""
        token = _bearer_token(authorization)
        if token is None:
            return None
        if own and _matches(token, own):
            return Caller(credential_id("source", token))
        found = self.tenants.tokens.get(digest(token))
        if found is not None and found[1] == route:
            return Caller(credential_id("source", token), found[0])
        return None


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def routing_key_of(raw: bytes, content_encoding: str | None) -> str | None:
    """The ``routing_key`` of a PagerDuty event body, None when it has none to read."""
    if len(raw) > MAX_EVENT:
        return None
    try:
        doc = orjson.loads(inflate(raw, content_encoding, MAX_EVENT))
    except (DecodeError, orjson.JSONDecodeError):
        return None
    key = doc.get("routing_key") if isinstance(doc, dict) else None
    return key if isinstance(key, str) and key else None


def source_bearer(tokens: frozenset[str], authorization: str | None) -> str | None:
    """The credential id of a request bearing one of an intake's own tokens (Zabbix's,
    Checkmk's): a token that opens that intake and no other route."""
    token = _bearer_token(authorization)
    if tokens and token is not None and _matches(token, tokens):
        return credential_id("source", token)
    return None
