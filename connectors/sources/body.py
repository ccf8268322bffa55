"""Request bodies: bounded inflation, and the bounds every intake shares.

- ``MAX_INFLATED``, 16 MiB: a gzip bomb must not become gigabytes of memory.
- ``MAX_ITEMS``, 10,000 items (samples, records, alerts) per request: a decoded item
  costs many times its bytes as Python objects, so requests are decoded item by item
  and the number of items is bounded.
- ``MAX_ITEM_ERRORS``, 100: the errors a 4xx answer and the request's one dead letter
  list (the count of all of them is given).
- ``MAX_JSON_VALUES``, 1,000,000 strings and containers in a body that is parsed whole
  (Alertmanager): a bound on the Python objects parsing it builds.

Prometheus sends 2,000 samples per request by default (``max_samples_per_send``) and
Alertmanager one group per notification (``max_alerts`` bounds it).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from schemas.errors import DecodeError

MAX_INFLATED = 16 * 1024 * 1024
MAX_ITEMS = 10_000
MAX_ITEM_ERRORS = 100
MAX_JSON_VALUES = 1_000_000


def inflate(data: bytes, encoding: str | None, limit: int = MAX_INFLATED) -> bytes:
    """The body with its Content-Encoding removed (gzip/deflate/identity), at most ``limit``."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(data) > limit:
            raise DecodeError(f"body exceeds {limit} bytes", reason="too_large", model="body")
        return data
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise DecodeError(f"Content-Encoding {encoding!r} is not supported (gzip, deflate)",
                          reason="unsupported_encoding", model="body")  # fmt: skip
    if enc != "deflate" and not data.startswith(b"\x1f\x8b"):
        # servers such as aiohttp inflate on read and keep the header: already plain
        return inflate(data, None, limit)
    wbits = 47 if enc != "deflate" else 15  # 32+15: gzip or zlib header, auto-detected
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {enc}: {exc}", reason="invalid_encoding",
                          model="body") from exc  # fmt: skip
    if len(out) > limit:
        raise DecodeError(f"inflated body exceeds {limit} bytes", reason="too_large",
                          model="body")  # fmt: skip
    return out


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based line numbers, one at a time (no list of all)."""
    start, number, end = 0, 0, len(data)
    while start <= end:
        stop = data.find(b"\n", start)
        if stop < 0:
            stop = end
        number += 1
        line = data[start:stop]
        if line.strip():
            yield number, line
        start = stop + 1


def split_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Non-blank NDJSON lines with their 1-based line numbers."""
    return list(iter_lines(data))


def json_values(data: bytes) -> int:
    """An upper bound on the strings, arrays and objects ``orjson.loads(data)`` would
    build (each one a Python object), counted at C speed."""
    return data.count(b'"') // 2 + data.count(b"[") + data.count(b"{")


def check_json_values(data: bytes, model: str, limit: int = MAX_JSON_VALUES) -> None:
    """Refuse a body that would take too much memory to parse whole."""
    if json_values(data) > limit:
        raise DecodeError(f"body holds more than {limit} JSON strings and containers: split it",
                          reason="too_many_items", model=model)  # fmt: skip


def too_many(what: str, model: str) -> DecodeError:
    return DecodeError(f"more than {MAX_ITEMS} {what} in one request: split it",
                       reason="too_many_items", model=model)  # fmt: skip
