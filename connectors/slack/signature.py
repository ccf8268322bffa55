"""Slack request signatures (v0): HMAC-SHA256 over `v0:{timestamp}:{raw body}`,
the timestamp within 5 minutes, compared in constant time, each body accepted once."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict

from schemas.errors import TocsinError

MAX_AGE_S = 300
# Slack sends Unix seconds; anything longer is not a time (and would overflow a float)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(TocsinError):
    """The request did not come from Slack, is stale, or was already seen."""


class SignatureVerifier:
    def __init__(self, signing_secret: str, replay_cache: int = 10_000) -> None:
        self._secret = signing_secret.encode()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cache = replay_cache

    def sign(self, timestamp: str, body: bytes) -> str:
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes,
               now: float) -> None:  # fmt: skip
        if not timestamp or not signature:
            raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureError("X-Slack-Request-Timestamp is not Unix seconds")
        if abs(int(now) - int(timestamp)) > MAX_AGE_S:
            raise SignatureError("stale request: timestamp more than 5 minutes away")
        expected = self.sign(timestamp, body).encode()
        if not hmac.compare_digest(expected, signature.encode(errors="replace")):
            raise SignatureError("signature mismatch")
        if signature in self._seen:
            raise SignatureError("replayed request")
        self._seen[signature] = None
        while len(self._seen) > self._cache:
            self._seen.popitem(last=False)
