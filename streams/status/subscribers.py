"""Webhook subscribers of a page: registered through the API (written to the store by
it, with an HMAC key given to the subscriber once), and the API worker's delivery loop.

Delivery is at least once: an update is marked delivered only after the subscriber
answered 2xx, and retried with a growing pause (up to `MAX_ATTEMPTS`) otherwise. Every
delivery carries the update's id (`X-Tocsin-Update-Id`, also in the body): a subscriber
that sees an id twice (a retry whose answer was lost, two API workers) drops the second.
The body is signed: `X-Tocsin-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
with `X-Tocsin-Timestamp`, so a subscriber can check it came from tocsin, unchanged.
A subscriber receives the updates its page's audience may read, from when it subscribed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import structlog
from sqlalchemy import Connection, Engine, and_, or_, select, update

from schemas.status import StatusConfig, Subscriber
from streams.store.status_rows import _insert
from streams.store.status_tables import status_deliveries, status_subscribers, status_updates

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 12
MAX_PAUSE = timedelta(hours=1)
BATCH = 100


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


@dataclass(frozen=True, slots=True)
class Due:
    subscriber_id: str
    url: str
    secret: str
    attempts: int
    body: dict[str, Any]


def due(conn: Connection, pages: Mapping[str, StatusConfig], now: datetime) -> list[Due]:
    """Deliveries to make now: updates never tried, or whose retry time has come. An update
    the page's audience may not read gets a mark that it is not for this subscriber, so
    it is looked at once."""
    s, u, d = status_subscribers.c, status_updates.c, status_deliveries.c
    rows = conn.execute(
        select(s.subscriber_id, s.url, s.secret, s.tenant, s.page, u.update_id, u.incident_id,
               u.status, u.message, u.title, u.audiences, u.at, d.attempts)
        .join(status_updates, and_(u.tenant == s.tenant, u.at >= s.created_at))
        .outerjoin(status_deliveries, and_(d.subscriber_id == s.subscriber_id,
                                           d.update_id == u.update_id))
        .where(and_(s.removed_at.is_(None),
                    or_(d.subscriber_id.is_(None),
                        and_(d.delivered_at.is_(None), d.next_at <= now))))
        .order_by(u.at).limit(BATCH)).all()  # fmt: skip
    out, skipped = [], []
    for r in rows:
        status = pages.get(r.tenant)
        page = status.page(r.page) if status is not None else None
        if page is None or page.audience not in r.audiences:
            skipped.append({"subscriber_id": r.subscriber_id, "update_id": r.update_id,
                            "attempts": 0, "next_at": None, "delivered_at": None,
                            "last_error": "not for this page's audience"})  # fmt: skip
            continue
        body = {"update_id": r.update_id, "tenant": r.tenant, "page": r.page,
                "incident_id": r.incident_id, "status": r.status, "title": r.title,
                "message": r.message, "at": r.at.isoformat()}  # fmt: skip
        out.append(Due(r.subscriber_id, r.url, r.secret, r.attempts or 0, body))
    if skipped:
        conn.execute(_insert(conn.dialect.name, status_deliveries).on_conflict_do_nothing(),
                     skipped)  # fmt: skip
        conn.commit()
    return out


def mark(conn: Connection, item: Due, now: datetime, error: str | None) -> None:
    attempts = item.attempts + 1
    gave_up = error is not None and attempts >= MAX_ATTEMPTS
    pause = min(timedelta(seconds=2**attempts), MAX_PAUSE)
    row = {"subscriber_id": item.subscriber_id, "update_id": item.body["update_id"],
           "attempts": attempts, "delivered_at": now if error is None else None,
           "next_at": None if error is None or gave_up else now + pause,
           "last_error": (error or "")[:500]}  # fmt: skip
    stmt = _insert(conn.dialect.name, status_deliveries)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["subscriber_id", "update_id"],
        set_={k: stmt.excluded[k] for k in ("attempts", "delivered_at", "next_at",
                                            "last_error")}), [row])  # fmt: skip
    conn.commit()


class Deliverer:
    """The API worker's loop: every `every` seconds, deliver what is due."""

    def __init__(self, engine: Engine, pages: dict[str, StatusConfig],
                 clock: Callable[[], datetime], every: float = 1.0,
                 client: httpx.AsyncClient | None = None) -> None:  # fmt: skip
        self.engine, self.pages, self.clock, self.every = engine, pages, clock, every
        self.client = client or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self.delivered = 0
        self.failed = 0

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.engine.connect() as conn:
            return fn(conn, *args)

    async def once(self) -> int:
        loop = asyncio.get_running_loop()
        items = await loop.run_in_executor(None, self._run, due, self.pages, self.clock())
        for item in items:
            error = await self._post(item)
            await loop.run_in_executor(None, self._run, mark, item, self.clock(), error)
            if error is None:
                self.delivered += 1
            else:
                self.failed += 1
                log.info("status_webhook_failed", subscriber=item.subscriber_id,
                         update_id=item.body["update_id"], attempt=item.attempts + 1,
                         error=error[:200])  # fmt: skip
        return len(items)

    async def _post(self, item: Due) -> str | None:
        body = orjson.dumps(item.body)
        ts = str(int(self.clock().timestamp()))
        headers = {"Content-Type": "application/json", "X-Tocsin-Timestamp": ts,
                   "X-Tocsin-Update-Id": item.body["update_id"],
                   "X-Tocsin-Signature": sign(item.secret, ts, body)}  # fmt: skip
        try:
            resp = await self.client.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}"

    async def run(self) -> None:
        while True:
            try:
                n = await self.once()
            except Exception as exc:  # the store away: the next round retries
                log.warning("status_webhooks_paused", error=str(exc).splitlines()[0][:300])
                n = 0
            if n < BATCH:
                await asyncio.sleep(self.every)
