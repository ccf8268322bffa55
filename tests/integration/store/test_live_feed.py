"""The console's live feed over a real store: an incident's page learns that its timeline
grew even when the ledger entry of a change lands after the snapshot that counts it
(the projector takes the two topics in separate batches), so a page drawn in between
still redraws with the entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count as counter
from typing import Any, TypeVar

from sqlalchemy import Engine

from schemas import Incident, IncidentEvent, encode
from schemas.api import IncidentSummary
from streams.api.incidents import TimelineGrew, changes
from streams.store.projection import Rec, apply_batch

T = TypeVar("T")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
_offsets = counter()


class Store:
    """What `changes` asks of the API: a store call (on the caller's loop, here)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.connect() as conn:
            return fn(conn, *args)


def _apply(engine: Engine, *values: Incident | IncidentEvent) -> None:
    kinds = ["incidents" if isinstance(v, Incident) else "incident-events" for v in values]
    recs = [Rec(k, k, 0, next(_offsets), encode(v)) for k, v in zip(kinds, values, strict=True)]
    with engine.begin() as conn:
        apply_batch(conn, recs)


def _incident(version: int, status: str, at: datetime) -> Incident:
    return Incident(incident_id="inc-live", group_key="db", version=version, status=status,
                    title="disk full on db-1", severity="critical", priority="P1",
                    opened_at=T0, acknowledged_at=at if status == "acknowledged" else None,
                    produced_at=at)  # type: ignore[arg-type]  # fmt: skip


def _entry(seq: int, kind: str, at: datetime) -> IncidentEvent:
    return IncidentEvent(incident_id="inc-live", seq=seq, kind=kind, at=at,
                         actor="carol")  # type: ignore[arg-type]  # fmt: skip


async def test_a_page_drawn_between_the_snapshot_and_its_entry_hears_of_the_entry(
    engine: Engine,
) -> None:
    _apply(engine, _incident(1, "triggered", T0), _entry(1, "opened", T0))
    acked = T0 + timedelta(minutes=1)
    _apply(engine, _incident(2, "acknowledged", acked))  # the snapshot: version 2, acked
    # the page is drawn now: version 2, the timeline up to seq 1; nothing newer to come
    # from the snapshots, so only the timeline can tell it the entry arrived
    feed = changes(
        Store(engine),
        "default",
        acked,
        every=0.05,  # type: ignore[arg-type]
        watch=("inc-live", 1),
    )
    got: list[IncidentSummary | TimelineGrew | None] = []

    async def read(until: Callable[[Any], bool]) -> Any:
        async for change in feed:
            got.append(change)
            if until(change):
                return change
        raise AssertionError("the feed ended")

    assert await asyncio.wait_for(read(lambda c: c is None), 10) is None, "quiet so far"
    assert not any(isinstance(c, TimelineGrew) for c in got)
    _apply(engine, _entry(2, "acknowledged", acked))
    grew = await asyncio.wait_for(read(lambda c: isinstance(c, TimelineGrew)), 10)
    assert grew == TimelineGrew(incident_id="inc-live", seq=2)
    assert not any(isinstance(c, IncidentSummary) for c in got), "no snapshot changed"


async def test_another_tenants_timeline_is_not_watched(engine: Engine) -> None:
    _apply(engine, _incident(1, "triggered", T0), _entry(1, "opened", T0),
           _entry(2, "acknowledged", T0 + timedelta(minutes=1)))  # fmt: skip
    feed = changes(
        Store(engine),
        "acme",
        T0,
        every=0.05,  # type: ignore[arg-type]
        watch=("inc-live", -1),
    )
    assert await asyncio.wait_for(anext(feed), 10) is None, "acme sees nothing of it"
