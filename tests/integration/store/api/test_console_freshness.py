"""The console says when the store may be showing an old picture: no projector has
heard from Kafka for a while, or one is far behind; and says nothing while one is
reading. The real projector writes what the console reads."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, delete

from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.projection import record_seen
from streams.store.projector import Projector
from tests.integration.store.api.conftest import TOKENS, Served


async def _page(served: Served) -> str:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        await c.post("/console/login", data={"token": TOKENS["viewer"]})
        return (await c.get("/console/")).text


def _banner(html: str) -> str:
    return html.split('<p class="stale" role="alert">', 1)[1].split("</p>", 1)[0] if (
        'class="stale"' in html) else ""  # fmt: skip


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_the_console_says_when_the_store_is_not_being_kept_up(
    served: Served, engine: Engine, kafka_settings: KafkaSettings
) -> None:
    projector, stop = Projector(kafka_settings, engine), threading.Event()
    worker = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    worker.start()
    try:
        # a running projector reports within its interval: no banner
        deadline = time.monotonic() + 60
        while "No projector" in _banner(await _page(served)):
            assert time.monotonic() < deadline, "the projector never reported"
            await asyncio.sleep(0.5)  # polling interval of a bounded wait
        assert _banner(await _page(served)) == ""
    finally:
        stop.set()
        worker.join(30)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(delete(tables.projector_seen))
        record_seen(conn, "old-pod/1", now - timedelta(minutes=5), 0)
    assert "has not heard from Kafka since" in _banner(await _page(served))
    with engine.begin() as conn:
        conn.execute(delete(tables.projector_seen))
        record_seen(conn, "busy-pod/1", now + timedelta(minutes=5), 250_000)
    assert "250,000 records still to project" in _banner(await _page(served))
    with engine.begin() as conn:
        conn.execute(delete(tables.projector_seen))
    assert "No projector has reported" in _banner(await _page(served))
