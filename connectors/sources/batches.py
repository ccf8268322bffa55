"""JSON and NDJSON batches of MetricSample / LogRecord, gzip or not.

Errors are data: each bad item yields an ItemError naming its position and field,
the good items still pass, and the caller decides the HTTP answer.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.codec import describe_validation_error

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ItemError:
    position: int  # 0-based item index (line number - 1 for NDJSON)
    raw: bytes
    message: str


class BodyError(ValueError):
    """The body as a whole cannot be read (bad gzip, not JSON, too large)."""


def inflate(body: bytes, encoding: str | None) -> bytes:
    if encoding and encoding.lower() == "gzip":
        try:
            out = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise BodyError(f"body is not valid gzip: {exc}") from exc
        if len(out) > MAX_BODY:
            raise BodyError(f"decompressed body exceeds {MAX_BODY} bytes")
        return out
    return body


def decode_batch(model: type[M], body: bytes, content_type: str
                 ) -> tuple[list[M], list[ItemError]]:  # fmt: skip
    """`application/x-ndjson`: one object per line; otherwise a JSON array or one object."""
    if "ndjson" in content_type or "jsonlines" in content_type:
        items = [line for line in body.split(b"\n") if line.strip()]
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"body is not JSON: {exc}") from exc
        docs = doc if isinstance(doc, list) else [doc]
        items = [orjson.dumps(d) for d in docs]
    good: list[M] = []
    bad: list[ItemError] = []
    for i, raw in enumerate(items):
        try:
            good.append(model.model_validate_json(raw))
        except ValidationError as exc:
            bad.append(ItemError(i, raw, describe_validation_error(model.__name__, exc)))
    return good, bad
