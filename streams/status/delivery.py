"""Delivering status updates to webhook subscribers: a loop in every API worker, all of
them sharing the store, each delivery sent by one of them.

A delivery is a row of `status_deliveries` per (subscriber, update). Any loop writes the
rows of new updates (a conflict means another loop wrote it first). To send one, a loop
claims it in the store first: a conditional UPDATE that sets the loop's id and a lease
only while the row is unclaimed (or its lease ran out), so of two loops that want the
same row one gets it (on PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, so
loops take different rows instead of queueing on the same). After the subscriber's
answer the claim's holder marks it delivered (2xx) or due again later; a loop that dies
mid-send gives its claims back when their lease runs out, and another loop sends them.

Delivery is at least once: a loop that dies after the subscriber's 2xx and before the
mark leaves the row claimed, so it is sent again after the lease. Every delivery
carries the update's id (`X-Tocsin-Update-Id`, also in the body) for the subscriber to
drop that rare second copy. Failures are retried with a growing pause, up to
`MAX_ATTEMPTS`. A subscriber receives the updates its page's audience may read, from
when it subscribed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import Connection, Engine, and_, or_, select, update

from schemas.status import StatusConfig
from streams.status.subscribers import sign
from streams.store.status_rows import _insert
from streams.store.status_tables import status_deliveries, status_subscribers, status_updates

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 12
MAX_PAUSE = timedelta(hours=1)
BATCH = 100
# one POST may take this long, all of it (connecting, sending, the answer) ...
SEND_TIMEOUT_S = 15.0
# ... and a claim outlives it with room for the mark and some clock skew between workers
LEASE = timedelta(seconds=60)
NOT_FOR_PAGE = "not for this page's audience"


@dataclass(frozen=True, slots=True)
class Due:
    subscriber_id: str
    url: str
    secret: str
    attempts: int
    body: dict[str, Any]


def worker_id() -> str:
    """Who claims: readable in the store (host, process) and unique per start."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def enqueue(conn: Connection, pages: Mapping[str, StatusConfig], now: datetime) -> int:
    """Write the row of each (subscriber, update) that has none yet: due now, or marked
    not for this subscriber when the page's audience may not read the update (so it is
    looked at once). Returns how many rows were wanted."""
    s, u, d = status_subscribers.c, status_updates.c, status_deliveries.c
    rows = conn.execute(
        select(s.subscriber_id, s.tenant, s.page, u.update_id, u.audiences)
        .join(status_updates, and_(u.tenant == s.tenant, u.at >= s.created_at))
        .outerjoin(status_deliveries, and_(d.subscriber_id == s.subscriber_id,
                                           d.update_id == u.update_id))
        .where(and_(s.removed_at.is_(None), d.subscriber_id.is_(None)))
        # one order for every loop: two writing the same rows never wait on each other
        # in a cycle
        .order_by(u.at, u.update_id, s.subscriber_id).limit(BATCH)).all()  # fmt: skip
    if not rows:
        return 0
    new = []
    for r in rows:
        readable = _readable(pages, r.tenant, r.page, r.audiences)
        new.append({"subscriber_id": r.subscriber_id, "update_id": r.update_id,
                    "attempts": 0, "next_at": now if readable else None,
                    "delivered_at": None, "last_error": "" if readable else NOT_FOR_PAGE,
                    "claimed_by": None, "claimed_until": None})  # fmt: skip
    conn.execute(_insert(conn.dialect.name, status_deliveries).on_conflict_do_nothing(), new)
    conn.commit()
    return len(rows)


def _readable(pages: Mapping[str, StatusConfig], tenant: str, page_id: str,
              audiences: list[str]) -> bool:  # fmt: skip
    status = pages.get(tenant)
    page = status.page(page_id) if status is not None else None
    return page is not None and page.audience in audiences


def _claimable(now: datetime) -> Any:
    d = status_deliveries.c
    return and_(d.delivered_at.is_(None), d.next_at <= now,
                or_(d.claimed_until.is_(None), d.claimed_until <= now))  # fmt: skip


def claim(conn: Connection, me: str, pages: Mapping[str, StatusConfig], now: datetime,
          lease: timedelta = LEASE, limit: int = BATCH) -> list[Due]:  # fmt: skip
    """Claim up to `limit` deliveries that are due and nobody holds, for `lease`. One
    whose page no longer lets its audience read the update (the configuration changed
    since it was written) is closed instead, unsent."""
    s, u, d = status_subscribers.c, status_updates.c, status_deliveries.c
    query = (
        select(d.subscriber_id, d.update_id, d.attempts, s.url, s.secret, s.tenant, s.page,
               u.incident_id, u.status, u.title, u.message, u.at, u.audiences)
        .join(status_subscribers, s.subscriber_id == d.subscriber_id)
        .join(status_updates, u.update_id == d.update_id)
        .where(and_(_claimable(now), s.removed_at.is_(None)))
        .order_by(d.next_at).limit(limit))  # fmt: skip
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=status_deliveries, skip_locked=True)
    rows = conn.execute(query).all()
    out = []
    for r in rows:
        # the claim itself: it holds only if the row is still claimable when written (on
        # SQLite the read above locked nothing, and another loop may have claimed since)
        mine = update(status_deliveries).where(
            and_(d.subscriber_id == r.subscriber_id, d.update_id == r.update_id, _claimable(now))
        )
        if not _readable(pages, r.tenant, r.page, r.audiences):
            conn.execute(mine.values(next_at=None, last_error=NOT_FOR_PAGE))
            continue
        won = conn.execute(mine.values(claimed_by=me, claimed_until=now + lease)).rowcount
        if not won:
            continue
        body = {"update_id": r.update_id, "tenant": r.tenant, "page": r.page,
                "incident_id": r.incident_id, "status": r.status, "title": r.title,
                "message": r.message, "at": r.at.isoformat()}  # fmt: skip
        out.append(Due(r.subscriber_id, r.url, r.secret, r.attempts, body))
    conn.commit()
    return out


def mark(conn: Connection, me: str, item: Due, now: datetime, error: str | None) -> bool:
    """Record the answer to a claimed delivery and give the claim back. False when the
    claim was no longer `me`'s (its lease ran out and another loop took it over)."""
    attempts = item.attempts + 1
    gave_up = error is not None and attempts >= MAX_ATTEMPTS
    pause = min(timedelta(seconds=2**attempts), MAX_PAUSE)
    d = status_deliveries.c
    n = conn.execute(update(status_deliveries).where(and_(
        d.subscriber_id == item.subscriber_id, d.update_id == item.body["update_id"],
        d.claimed_by == me)).values(
        attempts=attempts, delivered_at=now if error is None else None,
        next_at=None if error is None or gave_up else now + pause,
        last_error=(error or "")[:500], claimed_by=None, claimed_until=None)).rowcount  # fmt: skip
    conn.commit()
    return bool(n)


class Deliverer:
    """An API worker's loop: every `every` seconds, deliver what is due and unclaimed."""

    def __init__(self, engine: Engine, pages: dict[str, StatusConfig],
                 clock: Callable[[], datetime], every: float = 1.0,
                 client: httpx.AsyncClient | None = None, lease: timedelta = LEASE,
                 send_timeout_s: float = SEND_TIMEOUT_S, batch: int = BATCH) -> None:  # fmt: skip
        self.engine, self.pages, self.clock, self.every = engine, pages, clock, every
        self.lease, self.send_timeout_s, self.batch = lease, send_timeout_s, batch
        self.client = client or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self.me = worker_id()
        self.delivered = 0
        self.failed = 0

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.engine.connect() as conn:
            return fn(conn, *args)

    async def once(self) -> int:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._run, enqueue, self.pages, self.clock())
        items: list[Due] = await loop.run_in_executor(
            None, self._run, claim, self.me, self.pages, self.clock(), self.lease, self.batch
        )
        # all of a claim at once: each send is bounded, so the last ends inside the lease
        await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def _deliver(self, item: Due) -> None:
        loop = asyncio.get_running_loop()
        error = await self._post(item)
        ours = await loop.run_in_executor(None, self._run, mark, self.me, item, self.clock(),
                                          error)  # fmt: skip
        if not ours:
            log.warning("status_webhook_claim_lost", subscriber=item.subscriber_id,
                        update_id=item.body["update_id"])  # fmt: skip
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1
            log.info("status_webhook_failed", subscriber=item.subscriber_id,
                     update_id=item.body["update_id"], attempt=item.attempts + 1,
                     error=error[:200])  # fmt: skip

    async def _post(self, item: Due) -> str | None:
        body = orjson.dumps(item.body)
        ts = str(int(self.clock().timestamp()))
        headers = {"Content-Type": "application/json", "X-Tocsin-Timestamp": ts,
                   "X-Tocsin-Update-Id": item.body["update_id"],
                   "X-Tocsin-Signature": sign(item.secret, ts, body)}  # fmt: skip
        try:
            resp = await asyncio.wait_for(
                self.client.post(item.url, content=body, headers=headers), self.send_timeout_s
            )
        except TimeoutError:
            return f"no answer within {self.send_timeout_s:g} s"
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
            if n < self.batch:
                await asyncio.sleep(self.every)
