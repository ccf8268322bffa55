"""tocsin's own JSON formats for /v1/metrics and /v1/logs: a JSON array, an object
``{"samples": [...]}`` / ``{"records": [...]}``, or NDJSON (one event per line)."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from connectors.sources.body import looks_like_array, split_lines
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import LogRecord, MetricSample

M = TypeVar("M", bound=BaseModel)

_SAMPLES = TypeAdapter(list[MetricSample])
_RECORDS = TypeAdapter(list[LogRecord])


def decode_metrics(data: bytes) -> list[MetricSample]:
    return _decode(data, MetricSample, _SAMPLES, "samples")


def decode_logs(data: bytes) -> list[LogRecord]:
    return _decode(data, LogRecord, _RECORDS, "records")


def _decode(data: bytes, model: type[M], many: TypeAdapter[list[M]], wrapper: str) -> list[M]:
    head = data.lstrip()[:1]
    if not head:
        raise DecodeError("empty body: send a JSON array, an object or NDJSON lines",
                          reason="empty", model=model.__name__)  # fmt: skip
    if looks_like_array(data):
        return _array(data, model.__name__, many)
    lines = split_lines(data)
    if len(lines) == 1 and head == b"{":
        try:
            obj = orjson.loads(lines[0][1])
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and wrapper in obj:
            return _array(orjson.dumps(obj[wrapper]), model.__name__, many)
    out: list[M] = []
    for number, line in lines:
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            raise DecodeError(f"line {number}: {describe_validation_error(model.__name__, exc)}",
                              reason=_reason(exc), model=model.__name__) from exc  # fmt: skip
    return out


def _array(data: bytes, name: str, many: TypeAdapter[list[M]]) -> list[M]:
    try:
        return many.validate_json(data)
    except ValidationError as exc:
        # the location starts with the item index: "item 3: MetricSample.value: ..."
        first = exc.errors(include_url=False)[0]
        loc = first["loc"]
        where = f"item {loc[0]}: " if loc and isinstance(loc[0], int) else ""
        raise DecodeError(f"{where}{describe_validation_error(name, exc)}",
                          reason=_reason(exc), model=name) from exc  # fmt: skip


def _reason(exc: ValidationError) -> str:
    kinds = {e["type"] for e in exc.errors(include_url=False)}
    return "invalid_json" if "json_invalid" in kinds else "validation"
