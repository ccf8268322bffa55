"""tocsin's own JSON formats for /v1/metrics and /v1/logs: a JSON array, one object,
``{"samples": [...]}`` / ``{"records": [...]}``, or NDJSON (one object per line,
recognised by Content-Type or by content).

Errors are data: each bad item yields an ItemError naming its position and field,
the good items still pass, and the caller decides the HTTP answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from connectors.sources.body import inflate as inflate_body
from connectors.sources.body import split_lines
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError

M = TypeVar("M", bound=BaseModel)
_WRAPPERS = ("samples", "records", "items")


@dataclass(frozen=True, slots=True)
class ItemError:
    position: int  # 0-based item index (line number - 1 for NDJSON)
    raw: bytes
    message: str


class BodyError(ValueError):
    """The body as a whole cannot be read (bad gzip, not JSON, too large)."""


def inflate(body: bytes, encoding: str | None) -> bytes:
    try:
        return inflate_body(body, encoding)
    except DecodeError as exc:
        raise BodyError(str(exc)) from exc


def decode_batch(model: type[M], body: bytes, content_type: str
                 ) -> tuple[list[M], list[ItemError]]:  # fmt: skip
    if not body.strip():
        raise BodyError("empty body: send a JSON array, one object or NDJSON lines")
    items: list[tuple[int, bytes]]
    if "ndjson" in content_type or "jsonlines" in content_type:
        items = [(n - 1, line) for n, line in split_lines(body)]
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            lines = split_lines(body)
            if len(lines) < 2:
                raise BodyError(f"body is not JSON: {exc}") from exc
            items = [(n - 1, line) for n, line in lines]  # NDJSON sent as application/json
        else:
            if isinstance(doc, dict):
                inner = next((doc[w] for w in _WRAPPERS if isinstance(doc.get(w), list)), None)
                doc = inner if inner is not None else [doc]
            docs = doc if isinstance(doc, list) else [doc]
            items = [(i, orjson.dumps(d)) for i, d in enumerate(docs)]
    good: list[M] = []
    bad: list[ItemError] = []
    for position, raw in items:
        try:
            good.append(model.model_validate_json(raw))
        except ValidationError as exc:
            bad.append(ItemError(position, raw, describe_validation_error(model.__name__, exc)))
    return good, bad
