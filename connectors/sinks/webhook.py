"""A generic webhook: the Notification as JSON, signed with HMAC-SHA256.

Headers: ``X-Tocsin-Timestamp`` (unix seconds) and ``X-Tocsin-Signature:
v1=<hex hmac_sha256(secret, "v1:" + timestamp + ":" + body)>`` — the receiver checks
the timestamp is recent and compares in constant time (see ``verify``), so a
captured request cannot be replayed later. ``X-Tocsin-Delivery`` carries the
notification id for the receiver's own deduplication.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx

from connectors.sinks.delivery import Delivery, for_tenant, of_tenant
from connectors.sinks.http import post
from schemas.codec import encode
from schemas.notifications import Notification


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: float,
           max_age_s: float = 300) -> bool:  # fmt: skip
    try:
        fresh = abs(now - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSink:
    """``Notification.target`` is an alias of a configured URL (never a URL from data); a
    tenant's aliases are ``<tenant>/alias``, in the URLs and the secrets alike."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str],
                 secrets: Mapping[str, bytes],
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.client = client
        self.urls = urls
        self.secrets = secrets
        self.clock = clock

    async def deliver(self, n: Notification) -> Delivery:
        url = for_tenant(self.urls, n, fallback=False)
        if url is None:
            return Delivery(ok=False, error=f"no webhook URL configured for {n.target!r}"
                                            f"{of_tenant(n)}")  # fmt: skip
        secret = for_tenant(self.secrets, n, fallback=False)
        if not secret:
            # a receiver cannot tell an unsigned page from a forged one: never sent
            why = f"no WEBHOOK_SECRETS entry for {n.target!r}{of_tenant(n)}"
            return Delivery(ok=False, error=f"{why}: a webhook is only sent signed")
        body = encode(n)
        ts = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "X-Tocsin-Timestamp": ts,
                   "X-Tocsin-Delivery": n.notification_id,
                   "X-Tocsin-Signature": sign(secret, ts, body)}  # fmt: skip
        return await post(self.client, url, body, headers, ref=n.notification_id)
