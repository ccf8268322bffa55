"""tocsin's own JSON formats for /v1/metrics and /v1/logs: a JSON array, one object,
``{"samples": [...]}`` / ``{"records": [...]}``, or NDJSON (one object per line,
recognised by Content-Type or by content).

Errors are data: each bad item yields an ItemError naming its position and field,
the good items still pass, and the caller decides the HTTP answer. What makes the body
as a whole unusable (not JSON, too many items, nested too deep) raises BodyError.

Memory: a JSON array is split into its items' bytes by a scanner that only looks at
strings and brackets, and each item is validated from its bytes on its own, so no tree
of Python objects for the whole body is ever built (such a tree costs many times the
body's size). The items are yielded one at a time: the caller keeps what it needs of each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from connectors.sources.body import MAX_ITEMS, iter_lines, json_values
from connectors.sources.body import inflate as inflate_body
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError, TocsinError

M = TypeVar("M", bound=BaseModel)
_WRAPPERS = ("samples", "records", "items")
_WRAPPED = re.compile(rb'\{\s*"(?:samples|records|items)"\s*:\s*\[')
# a JSON string (escapes included) or a bracket or a comma; everything else is skipped in
# C. A string without its closing quote runs to the end of the body: the pattern never
# fails once it has begun, so a body of escaped quotes cannot make the scan quadratic
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*"?|[\[\]{},]', re.DOTALL)
_QUOTE, _COMMA, _CLOSE_ARRAY = ord('"'), ord(","), ord("]")
_OPEN = frozenset(b"[{")
MAX_DEPTH = 32  # an item is an object of scalars and one level of labels
MAX_TOKENS_PER_ITEM = 300  # strings and brackets: 64 labels make about 140
SMALL_BODY = 1024 * 1024  # a wrapper object not starting with its list is parsed whole


@dataclass(frozen=True, slots=True)
class ItemError:
    position: int  # 0-based item index (line number - 1 for NDJSON)
    message: str


class BodyError(TocsinError, ValueError):
    """The body as a whole cannot be read (bad gzip, not JSON, too large, too many items)."""

    def __init__(self, message: str, reason: str = "invalid_body") -> None:
        super().__init__(message)
        self.reason = reason


def inflate(body: bytes, encoding: str | None) -> bytes:
    try:
        return inflate_body(body, encoding)
    except DecodeError as exc:
        raise BodyError(str(exc), exc.reason) from exc


def decode_batch(model: type[M], body: bytes, content_type: str
                 ) -> tuple[list[M], list[ItemError]]:  # fmt: skip
    """Every item at once (tests, small inputs); `iter_batch` for one at a time."""
    good: list[M] = []
    bad: list[ItemError] = []
    for _, item in iter_batch(model, body, content_type):
        (bad if isinstance(item, ItemError) else good).append(item)  # type: ignore[arg-type]
    return good, bad


def iter_batch(model: type[M], body: bytes, content_type: str
               ) -> Iterator[tuple[int, M | ItemError]]:  # fmt: skip
    """(position, validated item or its error), in order; BodyError for the whole body,
    possibly after some items were yielded (the caller writes nothing before the end)."""
    count = 0
    for position, raw in _items(body, content_type):
        count += 1
        if count > MAX_ITEMS:
            raise BodyError(f"more than {MAX_ITEMS} items in one request: split it",
                            "too_many_items")  # fmt: skip
        if isinstance(raw, ItemError):
            yield position, raw
            continue
        try:
            yield position, model.model_validate_json(raw)
        except ValidationError as exc:
            yield position, ItemError(position, describe_validation_error(model.__name__, exc))


def _items(body: bytes, content_type: str) -> Iterable[tuple[int, bytes | ItemError]]:
    first = len(body) - len(body.lstrip())
    if first == len(body):
        raise BodyError("empty body: send a JSON array, one object or NDJSON lines")
    if "ndjson" in content_type or "jsonlines" in content_type:
        return _lines(body)
    lead = body[first]
    if lead == ord("["):
        return _array(body, first, wrapped=False)
    if lead == ord("{"):
        wrapper = _WRAPPED.match(body, first)
        if wrapper is not None:
            return _array(body, wrapper.end() - 1, wrapped=True)
        if _looks_like_ndjson(body, first):
            return _lines(body)
        return _object(body)
    try:
        orjson.loads(body)  # a scalar: one item, which the model will refuse by name
    except orjson.JSONDecodeError as exc:
        if sum(1 for _ in zip(range(2), iter_lines(body), strict=False)) > 1:
            return _lines(body)
        raise BodyError(f"body is not JSON: {exc}", "invalid_json") from exc
    return [(0, body)]


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    return ((n - 1, line) for n, line in iter_lines(body))


def _looks_like_ndjson(body: bytes, first: int) -> bool:
    end = body.find(b"\n", first)
    if end < 0 or not body[end:].strip():
        return False
    return body[first:end].rstrip().endswith(b"}")


def _object(body: bytes) -> list[tuple[int, bytes | ItemError]]:
    """One object, or a wrapper whose list is not its first key (parsed whole: small only)."""
    if len(body) > SMALL_BODY or not any(f'"{w}"'.encode() in body for w in _WRAPPERS):
        return [(0, body)]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [(0, body)]  # the model names the JSON error
    inner = next((doc[w] for w in _WRAPPERS if isinstance(doc.get(w), list)), None)
    if inner is None:
        return [(0, body)]
    if len(inner) > MAX_ITEMS:
        raise BodyError(f"more than {MAX_ITEMS} items in one request: split it",
                        "too_many_items")  # fmt: skip
    out: list[tuple[int, bytes | ItemError]] = []
    for i, d in enumerate(inner):
        try:
            out.append((i, orjson.dumps(d)))
        except orjson.JSONEncodeError as exc:  # deeper than orjson writes (255)
            out.append((i, ItemError(i, f"not writable as JSON: {exc}")))
    return out


def _array(body: bytes, opening: int, *, wrapped: bool) -> Iterator[tuple[int, bytes]]:
    """The items of the JSON array opening at ``body[opening]``, as byte slices."""
    tokens = json_values(body)
    if tokens > MAX_ITEMS * MAX_TOKENS_PER_ITEM:
        raise BodyError(f"body holds about {tokens} JSON strings and containers, more than "
                        f"{MAX_ITEMS} items can: split it", "too_many_items")  # fmt: skip
    depth, index, start = 0, 0, opening + 1
    for match in _TOKEN.finditer(body, opening + 1):
        char = body[match.start()]
        if char == _QUOTE:
            continue
        if char == _COMMA:
            if depth == 0:
                yield index, body[start : match.start()]
                index, start = index + 1, match.end()
        elif char in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise BodyError(f"item {index}: nested deeper than {MAX_DEPTH} levels",
                                "invalid_json")  # fmt: skip
        elif depth > 0:
            depth -= 1
        elif char != _CLOSE_ARRAY:
            raise BodyError(f"body is not JSON: unexpected '}}' at byte {match.start()}",
                            "invalid_json")  # fmt: skip
        else:
            last = body[start : match.start()]
            if index > 0 or last.strip():
                yield index, last
            rest = body[match.end() :].strip()
            if rest != (b"}" if wrapped else b"") and not (wrapped and rest.endswith(b"}")):
                raise BodyError(f"body is not JSON: {rest[:40]!r} after the array",
                                "invalid_json")  # fmt: skip
            return
    raise BodyError("body is not JSON: the array is not closed", "invalid_json")
