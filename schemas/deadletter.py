"""Dead letters: input a worker could not use, kept for inspection and replay.

A dead letter must fit in one Kafka record whatever it carries, so the original bytes
are kept up to ``MAX_DEAD_LETTER_VALUE``: a longer value keeps its prefix, and the
letter says so (``truncated``) and keeps the original's size and SHA-256, enough to
match it against a copy kept by the sender.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from schemas.envelope import Event
from schemas.types import MAX_TEXT, Name, ShortText, Text

MAX_DEAD_LETTER_VALUE = 256 * 1024
"""Bytes of the original value kept: base64 makes 342 KiB of it, far below Kafka's
default 1 MB record limit together with the error text and the key."""
MAX_DEAD_LETTER_KEY = 4096


class DeadLetter(Event):
    """The original bytes of a rejected record (bounded), where they came from and why.

    Bytes are raw in Python and base64 in JSON, so any payload survives intact.
    Built from bytes, ``value_size`` and ``value_sha256`` describe the whole original
    value and ``truncated`` is true when ``value`` (or ``key``) holds only a prefix.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    source_topic: ShortText
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    key: bytes | None = Field(default=None, max_length=MAX_DEAD_LETTER_KEY)
    value: bytes | None = Field(default=None, max_length=MAX_DEAD_LETTER_VALUE)
    value_size: int | None = Field(default=None, ge=0)
    value_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    truncated: bool = False
    reason: Name
    error: Text
    stage: Name = "decode"
    worker: Name = "unknown"

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        """Raw bytes in (a worker building a letter): keep what fits and describe the rest."""
        if not isinstance(data, dict):
            return data
        value, key = data.get("value"), data.get("key")
        cut_value = isinstance(value, bytes | bytearray) and len(value) > MAX_DEAD_LETTER_VALUE
        cut_key = isinstance(key, bytes | bytearray) and len(key) > MAX_DEAD_LETTER_KEY
        error = data.get("error")
        if isinstance(value, bytes | bytearray) and data.get("value_sha256") is None:
            data = {**data, "value_size": len(value),
                    "value_sha256": hashlib.sha256(value).hexdigest()}  # fmt: skip
        if cut_value or cut_key:
            data = {**data, "truncated": True}
            if cut_value:
                data["value"] = bytes(value[:MAX_DEAD_LETTER_VALUE])  # type: ignore[index]
            if cut_key:
                data["key"] = bytes(key[:MAX_DEAD_LETTER_KEY])  # type: ignore[index]
        if isinstance(error, str) and len(error) > MAX_TEXT:
            data = {**data, "error": error[: MAX_TEXT - 40] + " ... (error text truncated)"}
        return data
