"""Who may write through the gateway: bearer tokens, PagerDuty routing keys, open mode.

Every route authenticates. A route whose kind of credential is not configured at all is
refused, unless the gateway was started in open (insecure) mode, which the CLI allows
only on loopback or when told so explicitly. What an authenticated request is known by
(its credential id) keys the rate limits; it is a digest, never the secret itself, so
it may appear in logs and metrics.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from connectors.sources.body import inflate
from schemas import DecodeError

# PagerDuty refuses events above 512 KB; an unauthenticated body is never inflated
# further than this to look for its key
MAX_EVENT = 1024 * 1024


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

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.pagerduty_keys)

    def bearer(self, authorization: str | None, peer: str) -> str | None:
        """The credential id of a request with ``Authorization: Bearer <token>``."""
        if not self.tokens:
            return f"open:{peer}" if self.open else None
        token = _bearer_token(authorization)
        if token is not None and _matches(token, self.tokens):
            return credential_id("token", token)
        return None

    def pagerduty(self, authorization: str | None, routing_key: str | None,
                  peer: str) -> str | None:  # fmt: skip
        """/v2/enqueue: a configured routing key, a bearer token as routing key or header."""
        if not self.configured:
            return f"open:{peer}" if self.open else None
        token = _bearer_token(authorization)
        if token is not None and self.tokens and _matches(token, self.tokens):
            return credential_id("token", token)
        if routing_key is None:
            return None
        if self.pagerduty_keys and _matches(routing_key, self.pagerduty_keys):
            return credential_id("routing_key", routing_key)
        if self.tokens and _matches(routing_key, self.tokens):
            return credential_id("token", routing_key)
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
