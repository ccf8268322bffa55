"""The envelope every event on a tocsin topic carries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import Tenant, Timestamp

SCHEMA_VERSION = 1  # the Literal below must change with it


_IDS_PER_READ = 256


def _fresh_ids() -> Iterator[str]:
    hexed = os.urandom(16 * _IDS_PER_READ).hex()
    return iter([hexed[i : i + 32] for i in range(0, len(hexed), 32)])


_ids: Iterator[str] = iter(())


def _forget_ids() -> None:
    """A forked child must not hand out the ids its parent will."""
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_ids)


def new_event_id() -> str:
    """A random 128-bit id, hex, from the OS's random bytes read many ids at a time: a
    read per id is a system call that lets go of the GIL, and on a busy process every
    event then waits for its turn to take the GIL back. Thread-safe: each id is taken by
    one ``next`` of a list iterator, which no other thread can interleave."""
    global _ids
    while (event_id := next(_ids, None)) is None:
        _ids = _fresh_ids()
    return event_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Common envelope: version, idempotency id, tenant and produce time.

    ``event_id`` is the idempotency key: a consumer that sees the same id twice
    (a producer retry, a replay) must apply it once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=65536)

    schema_version: Literal[1] = 1
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    tenant: Tenant = "default"
    produced_at: Timestamp = Field(default_factory=utcnow)
