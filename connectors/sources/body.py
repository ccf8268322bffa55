"""Request bodies: bounded gzip inflation and splitting JSON vs NDJSON batches."""

from __future__ import annotations

import zlib

from schemas.errors import DecodeError

MAX_INFLATED = 64 * 1024 * 1024  # a 1 MB gzip bomb must not become 1 GB of memory


def inflate(data: bytes, encoding: str | None, limit: int = MAX_INFLATED) -> bytes:
    """The body with its Content-Encoding removed (gzip/deflate/identity), at most ``limit``."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return data
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise DecodeError(f"Content-Encoding {encoding!r} is not supported (gzip, deflate)",
                          reason="unsupported_encoding", model="body")  # fmt: skip
    if enc != "deflate" and not data.startswith(b"\x1f\x8b"):
        # servers such as aiohttp inflate on read and keep the header: already plain
        return data
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


def split_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Non-blank NDJSON lines with their 1-based line numbers."""
    return [(i, line) for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]


def looks_like_array(data: bytes) -> bool:
    return data.lstrip()[:1] == b"["
