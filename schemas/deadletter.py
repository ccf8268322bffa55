"""Dead letters: input a worker could not use, kept whole for inspection and replay."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from schemas.envelope import Event
from schemas.types import Name, ShortText, Text


class DeadLetter(Event):
    """The original bytes of a rejected record, where they came from and why.

    Bytes are raw in Python and base64 in JSON, so any payload survives intact.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    source_topic: ShortText
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    key: bytes | None = None
    value: bytes | None = Field(default=None, max_length=16 * 1024 * 1024)
    reason: Name
    error: Text
    stage: Name = "decode"
    worker: Name = "unknown"
