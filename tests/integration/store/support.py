"""Waits and comparisons over a store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select

from streams.store import tables

PROJECTED = (tables.incidents, tables.members, tables.timeline, tables.notifications,
             tables.silences, tables.overrides)  # fmt: skip


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projected row, in key order: two stores with the same dump are equal."""
    out = {}
    with engine.connect() as conn:
        for t in PROJECTED:
            keys = list(t.primary_key.columns)
            out[t.name] = [tuple(r) for r in conn.execute(select(t).order_by(*keys))]
    return out


def wait_until(what: str, cond: Callable[[], bool], timeout: float = 90.0,
               every: float = 0.2) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
