"""Status webhooks delivered by several API workers sharing one store, on SQLite and
PostgreSQL: every update reaches every subscriber once with two delivery loops racing
over the same rows (and a subscriber whose first answer to each update is a 500); a
worker killed with -9 in the middle of its sends gives its deliveries back when their
lease runs out, and the other worker sends them, once; a claim is exclusive until its
lease ends, and the late answer of a worker that lost it changes nothing; a delivery
whose page no longer shows the update is closed unsent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import Engine, select

from schemas.status import StatusConfig
from streams.status import subscribers
from streams.status.delivery import Deliverer, claim, enqueue, mark
from streams.store.db import StoreSettings, open_engine
from streams.store.status_tables import status_deliveries, status_updates
from tests.integration.store.api.conftest import free_port
from tests.integration.store.api.test_api import until
from tests.integration.store.conftest import store_env
from tests.integration.store.status_replica import PAGES, now

ROOT = Path(__file__).resolve().parents[3]


class Subscriber:
    """Subscribers' endpoints (`/hook/<name>`) that count what they acknowledged. A
    request from a replica in `hold` is never answered (its sender dies meanwhile); a
    hook in `flaky` answers 500 the first time it sees each update."""

    def __init__(self, hold: frozenset[str] = frozenset(),
                 flaky: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.hold, self.flaky = hold, flaky
        self.acked: list[tuple[str, str, str, float]] = []  # hook, update, replica, when
        self.held: list[tuple[str, str]] = []
        self.refused: set[tuple[str, str]] = set()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        hook, replica = request.match_info["hook"], request.headers.get("X-Replica", "")
        key = (hook, orjson.loads(await request.read())["update_id"])
        if replica in self.hold:
            self.held.append(key)
            await self.release.wait()
            return web.Response(status=503)
        if hook in self.flaky and key not in self.refused:
            self.refused.add(key)
            return web.Response(status=500)
        self.acked.append((*key, replica, time.monotonic()))
        return web.Response(status=200)

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((hook, update) for hook, update, _, _ in self.acked)


@contextlib.asynccontextmanager
async def serve(sub: Subscriber) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/hook/{hook}", sub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        sub.release.set()
        await runner.cleanup()


def subscribe(engine: Engine, port: int, hooks: list[str]) -> dict[str, str]:
    """Subscriber id -> hook name."""
    with engine.connect() as conn:
        return {subscribers.add(conn, "acme", "public", f"http://127.0.0.1:{port}/hook/{h}",
                                now())["subscriber_id"]: h for h in hooks}  # fmt: skip


def post(engine: Engine, n: int, audiences: tuple[str, ...] = ("public",)) -> list[str]:
    """`n` updates, as the projector writes them from responders' commands."""
    ids = [secrets.token_hex(8) for _ in range(n)]
    with engine.begin() as conn:
        conn.execute(status_updates.insert(), [{
            "update_id": uid, "tenant": "acme", "incident_id": "inc-1", "status": "identified",
            "message": f"update {uid}", "audiences": list(audiences), "title": "Checkout errors",
            "components": ["shop"], "author": "carol", "at": now()} for uid in ids])  # fmt: skip
    return ids


def settled(engine: Engine) -> bool:
    """Every delivery that is for its subscriber is delivered and nobody holds a claim,
    so no send is under way (a send needs a claim)."""
    d = status_deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(select(d.delivered_at, d.claimed_by, d.last_error)).all()
    return all(r.claimed_by is None and (r.delivered_at is not None
                                         or r.last_error == "not for this page's audience")
               for r in rows)  # fmt: skip


@contextlib.contextmanager
def engines(store: StoreSettings, n: int) -> Iterator[list[Engine]]:
    made = [open_engine(store) for _ in range(n)]
    try:
        yield made
    finally:
        for e in made:
            e.dispose()


async def test_two_delivery_loops_send_every_update_to_every_subscriber_once(
    store: StoreSettings, engine: Engine
) -> None:
    sub = Subscriber(flaky=frozenset({"flaky"}))
    async with serve(sub) as port:
        hooks = subscribe(engine, port, ["one", "two", "flaky"])
        with engines(store, 2) as own:
            # small claims, so the two loops take turns on the same rows all along
            loops = [Deliverer(e, PAGES, now, every=0.05, batch=5,
                               client=httpx.AsyncClient(headers={"X-Replica": f"r{i}"}))
                     for i, e in enumerate(own)]  # fmt: skip
            tasks = [asyncio.create_task(loop.run()) for loop in loops]
            try:
                public: list[str] = []
                for _ in range(6):
                    public += post(engine, 10)
                    post(engine, 1, ("private",))
                    await asyncio.sleep(0.1)  # updates arrive while the loops deliver
                wanted = {(h, u) for h in hooks.values() for u in public}

                async def all_acked() -> bool:
                    return set(sub.counts()) >= wanted

                await until("every update at every subscriber", all_acked, within=120)
                await until("no delivery claimed", lambda: _async(settled(engine)))
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for loop in loops:
                    await loop.client.aclose()
    counts = sub.counts()
    assert set(counts) == wanted, "private updates reach no public page's subscriber"
    assert [k for k, c in counts.items() if c > 1] == []
    assert {replica for _, _, replica, _ in sub.acked} == {"r0", "r1"}
    assert len(sub.refused) == len(public), "each flaky first try failed and was retried"


async def _async(value: bool) -> bool:
    return value


async def test_a_worker_killed_mid_delivery_gives_its_deliveries_back_after_the_lease(
    store: StoreSettings, engine: Engine, tmp_path: Path
) -> None:
    lease_s = 30.0
    sub = Subscriber(hold=frozenset({"a"}))
    async with serve(sub) as port:
        hooks = subscribe(engine, port, ["one", "two"])
        first = post(engine, 10)
        a = await _replica("a", store, tmp_path, lease_s)
        b: asyncio.subprocess.Process | None = None
        try:
            await until("replica a sending", lambda: _async(bool(sub.held)), within=60)
            d = status_deliveries.c
            with engine.connect() as conn:
                taken = {(hooks[r.subscriber_id], r.update_id) for r in conn.execute(
                    select(d.subscriber_id, d.update_id).where(d.claimed_by == a.me))}  # fmt: skip
            assert taken, "replica a claimed deliveries before it sent"
            b = await _replica("b", store, tmp_path, lease_s)
            later = post(engine, 10)

            async def b_delivers_the_later_ones() -> bool:
                return {(h, u) for h, u, r, _ in sub.acked if r == "b"} >= {
                    (h, u) for h in hooks.values() for u in later
                }

            await until("replica b delivering beside a", b_delivers_the_later_ones)
            a.proc.kill()
            await a.proc.wait()
            killed_at = time.monotonic()
            wanted = {(h, u) for h in hooks.values() for u in first + later}

            async def all_acked() -> bool:
                return set(sub.counts()) >= wanted

            await until("every update at every subscriber", all_acked, within=lease_s + 60)
            await until("no delivery claimed", lambda: _async(settled(engine)))
        finally:
            for r in (a, b):
                if r is not None and r.proc.returncode is None:
                    r.proc.kill()
                    await r.proc.wait()
    counts = sub.counts()
    assert set(counts) == wanted
    assert [k for k, c in counts.items() if c > 1] == []
    assert {replica for _, _, replica, _ in sub.acked} == {"b"}
    late = [when for h, u, _, when in sub.acked if (h, u) in taken]
    assert len(late) == len(taken) and min(late) > killed_at, (
        "a's claims stayed a's while it lived (its lease had not run out)"
    )


class _Replica:
    def __init__(self, proc: asyncio.subprocess.Process, me: str) -> None:
        self.proc, self.me = proc, me


async def _replica(name: str, store: StoreSettings, tmp_path: Path,
                   lease_s: float) -> _Replica:  # fmt: skip
    out = tmp_path / f"replica-{name}.log"
    with out.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.store.status_replica", name,
            str(lease_s), str(lease_s - 5), cwd=ROOT, stdout=sink,
            stderr=asyncio.subprocess.STDOUT, env={**os.environ, **store_env(store)})  # fmt: skip

    async def ready() -> str | None:
        if proc.returncode is not None:
            raise AssertionError(f"replica {name} exited: {out.read_text()[-2000:]}")
        first = out.read_text().partition("\n")
        return first[0].split()[1] if first[1] and first[0].startswith("ready") else None

    return _Replica(proc, await until(f"replica {name} started", ready))


@pytest.fixture
def moment() -> datetime:
    return datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def _one_public_update(engine: Engine, moment: datetime) -> None:
    """A subscriber of acme's public page, and one update posted to it a second later."""
    with engine.connect() as conn:
        subscribers.add(conn, "acme", "public", "http://127.0.0.1:9/hook", moment)
    with engine.begin() as conn:
        conn.execute(status_updates.insert(), [{
            "update_id": "u1", "tenant": "acme", "incident_id": "inc-1", "status": "identified",
            "message": "m", "audiences": ["public"], "title": "t", "components": [],
            "author": "carol", "at": moment + timedelta(seconds=1)}])  # fmt: skip


def test_a_claim_is_one_workers_until_its_lease_ends(engine: Engine, moment: datetime) -> None:
    _one_public_update(engine, moment)
    lease = timedelta(seconds=60)
    t = moment + timedelta(seconds=2)
    with engine.connect() as conn:
        assert enqueue(conn, PAGES, t) == 1
        assert enqueue(conn, PAGES, t) == 0, "the row is written once"
        (mine,) = claim(conn, "a", PAGES, t, lease)
        assert claim(conn, "b", PAGES, t + lease - timedelta(seconds=1), lease) == []
        # a died between the subscriber's answer and its mark: b sends it again
        (again,) = claim(conn, "b", PAGES, t + lease, lease)
        assert again.body["update_id"] == "u1" and again.attempts == 0
        assert not mark(conn, "a", mine, t + lease, None), "a's late mark changes nothing"
        assert claim(conn, "c", PAGES, t + lease + timedelta(seconds=1), lease) == [], "still b's"
        assert mark(conn, "b", again, t + lease + timedelta(seconds=2), "HTTP 502")
        assert claim(conn, "c", PAGES, t + lease + timedelta(seconds=3), lease) == [], "retry later"
        (retry,) = claim(conn, "c", PAGES, t + lease + timedelta(seconds=4), lease)
        assert retry.attempts == 1
        assert mark(conn, "c", retry, t + lease + timedelta(seconds=5), None)
        assert claim(conn, "d", PAGES, t + 2 * lease + timedelta(hours=2), lease) == []


def test_a_delivery_whose_page_no_longer_shows_the_update_is_closed_unsent(
    engine: Engine, moment: datetime
) -> None:
    _one_public_update(engine, moment)
    # the page "public" made internal after the delivery was written
    internal = {"acme": StatusConfig.model_validate({
        "components": [{"id": "shop", "name": "Shop", "services": ["checkout"]}],
        "pages": [{"id": "public", "audience": "internal", "title": "Acme NOC"}]})}  # fmt: skip
    t = moment + timedelta(seconds=2)
    with engine.connect() as conn:
        assert enqueue(conn, PAGES, t) == 1
        assert claim(conn, "a", internal, t) == []
        assert claim(conn, "a", PAGES, t + timedelta(seconds=1)) == [], "closed for good"
        d = status_deliveries.c
        row = conn.execute(select(d.delivered_at, d.next_at, d.last_error)).one()
    assert row == (None, None, "not for this page's audience")
