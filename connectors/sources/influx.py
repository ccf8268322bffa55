"""InfluxDB line protocol (Telegraf's output): ``cpu,host=a usage=1.5,n=3i 1700000000000000000``.

Each numeric field becomes one sample named ``<measurement>_<field>`` (``value``
fields keep the bare measurement name), tags become labels. Booleans are 1/0;
string fields carry no number and are skipped (counted in ``InfluxBatch.skipped``).
Escapes follow the spec: ``\\,`` ``\\ `` ``\\=`` in names and tags, ``\\"`` in strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import MetricSample

_UNSAFE = re.compile(r"[^a-zA-Z0-9_:.\-]")
_PRECISION = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass
class InfluxBatch:
    samples: list[MetricSample] = field(default_factory=list)
    skipped: int = 0


def decode_influx(data: bytes, now: datetime, precision: str = "ns") -> InfluxBatch:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"line protocol is not UTF-8: {exc}", reason="invalid_encoding",
                          model="influx") from exc  # fmt: skip
    scale = _PRECISION.get(precision)
    if scale is None:
        raise DecodeError(f"precision {precision!r}: use ns, us, ms or s",
                          reason="validation", model="influx")  # fmt: skip
    out = InfluxBatch()
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            _line(line, now, scale, out)
        except (ValueError, ValidationError, OverflowError, OSError) as exc:
            why = (describe_validation_error("MetricSample", exc)
                   if isinstance(exc, ValidationError) else str(exc))  # fmt: skip
            raise DecodeError(f"line {number}: {why}", reason="validation", model="influx"
                              ) from exc  # fmt: skip
    return out


def _line(line: str, now: datetime, scale: int, out: InfluxBatch) -> None:
    series, rest = _split_unescaped(line, " ", quotes=False, maxsplit=1)
    fields_part, _, stamp = _split_fields_and_time(rest)
    name_and_tags = _split_unescaped(series, ",", quotes=False)
    measurement = _unescape(name_and_tags[0])
    if not measurement:
        raise ValueError("missing measurement name")
    labels: dict[str, str] = {}
    for tag in name_and_tags[1:]:
        key, sep, value = _partition_unescaped(tag, "=")
        if not sep or not key:
            raise ValueError(f"tag {tag!r} is not key=value")
        labels[_UNSAFE.sub("_", _unescape(key))] = _unescape(value)
    at = datetime.fromtimestamp(int(stamp) * scale / 1e9, UTC) if stamp else now
    if not fields_part:
        raise ValueError("no fields: a line needs at least one field")
    for item in _split_unescaped(fields_part, ",", quotes=True):
        key, sep, raw = _partition_unescaped(item, "=")
        if not sep or not key:
            raise ValueError(f"field {item!r} is not key=value")
        number, kind = _field_value(raw)
        if number is None:
            out.skipped += 1
            continue
        fname = _unescape(key)
        name = measurement if fname == "value" else f"{measurement}_{fname}"
        out.samples.append(MetricSample(name=_UNSAFE.sub("_", name), value=number, time=at,
                                        labels=labels, kind=kind))  # fmt: skip


def _field_value(raw: str) -> tuple[float | None, str]:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ValueError(f"unterminated string field {raw[:40]!r}")
        return None, "gauge"
    if raw in ("t", "T", "true", "True", "TRUE"):
        return 1.0, "gauge"
    if raw in ("f", "F", "false", "False", "FALSE"):
        return 0.0, "gauge"
    if raw.endswith(("i", "u")):
        return float(int(raw[:-1])), "gauge"
    return float(raw), "gauge"


def _split_fields_and_time(rest: str) -> tuple[str, str, str]:
    parts = _split_unescaped(rest, " ", quotes=True)
    parts = [p for p in parts if p]
    if len(parts) == 1:
        return parts[0], "", ""
    if len(parts) == 2:
        return parts[0], " ", parts[1]
    raise ValueError("expected `fields [timestamp]` after the series")


def _split_unescaped(s: str, sep: str, *, quotes: bool, maxsplit: int = -1) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    i, in_str = 0, False
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if quotes and ch == '"':
            in_str = not in_str
        if ch == sep and not in_str and (maxsplit < 0 or len(out) < maxsplit):
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if in_str:
        raise ValueError("unterminated string field")
    out.append("".join(cur))
    if maxsplit == 1 and len(out) < 2:
        raise ValueError("expected a space between the series and its fields")
    return out


def _partition_unescaped(s: str, sep: str) -> tuple[str, str, str]:
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == sep:
            return s[:i], sep, s[i + 1 :]
        i += 1
    return s, "", ""


def _unescape(s: str) -> str:
    return s.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=").replace('\\"', '"')
