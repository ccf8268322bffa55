"""Webhook subscribers of a page: registered through the API (written to the store by
it, with an HMAC key given to the subscriber once) and the signature of what they are
sent (`streams.status.delivery` sends it).

The body is signed: `X-Tocsin-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
with `X-Tocsin-Timestamp`, so a subscriber can check it came from tocsin, unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, select, update

from schemas.status import Subscriber
from streams.store.status_tables import status_subscribers


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a subscriber, or None. HTTPS only, except to this machine
    (loopback), which never leaves it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "an https:// URL with a host"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "https:// is required (plain http only to a loopback address)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add(conn: Connection, tenant: str, page: str, url: str, now: datetime) -> dict[str, Any]:
    sid = secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    conn.execute(status_subscribers.insert(), [{
        "subscriber_id": sid, "tenant": tenant, "page": page, "url": url, "secret": secret,
        "created_at": now, "removed_at": None}])  # fmt: skip
    conn.commit()
    # the key is shown this once; tocsin keeps it only to sign
    return {"subscriber_id": sid, "url": url, "secret": secret, "created_at": now.isoformat()}


def listed(conn: Connection, tenant: str, page: str) -> list[Subscriber]:
    s = status_subscribers.c
    rows = conn.execute(
        select(s.subscriber_id, s.url, s.created_at)
        .where(and_(s.tenant == tenant, s.page == page, s.removed_at.is_(None)))
        .order_by(s.created_at)
    )
    return [Subscriber(subscriber_id=r.subscriber_id, url=r.url, created_at=r.created_at)
            for r in rows]  # fmt: skip


def remove(conn: Connection, tenant: str, page: str, sid: str, now: datetime) -> bool:
    s = status_subscribers.c
    n = conn.execute(update(status_subscribers).where(and_(
        s.subscriber_id == sid, s.tenant == tenant, s.page == page, s.removed_at.is_(None)))
        .values(removed_at=now)).rowcount  # fmt: skip
    conn.commit()
    return bool(n)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
