"""The envelope every event on a tocsin topic carries."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import Tenant, Timestamp

SCHEMA_VERSION = 1  # the Literal below must change with it


def new_event_id() -> str:
    """A random 128-bit id, hex: cheaper than uuid4() on the hot path, same entropy."""
    return os.urandom(16).hex()


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
