"""JSON log lines from web servers and proxies (nginx/Envoy/Traefik JSON access logs,
rsyslog's JSON template): the fields that matter for alerting, found under their
common names, into LogRecord.

Recognised: time (``time``, ``timestamp``, ``@timestamp``, ``ts``; RFC 3339 or epoch
seconds/milliseconds), HTTP status (``status``, ``http_status``, ``status_code``,
``response.status``), duration (``duration_ms``, ``latency_ms``; ``request_time``
and ``duration`` in seconds), level, message; ``service``, ``host``, ``method``,
``route``, ``upstream`` become labels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from connectors.sources.body import split_lines
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import LogRecord

_TIME = ("time", "timestamp", "@timestamp", "ts")
_STATUS = ("status", "http_status", "status_code")
_LABELS = ("service", "host", "hostname", "method", "route", "upstream", "app")
_LEVELS = {"debug": "debug", "info": "info", "notice": "info", "warn": "warning",
           "warning": "warning", "error": "error", "err": "error", "crit": "critical",
           "critical": "critical", "fatal": "critical", "alert": "critical",
           "emerg": "critical"}  # fmt: skip


def decode_json_logs(data: bytes, now: datetime, source: str = "jsonlog") -> list[LogRecord]:
    out: list[LogRecord] = []
    for number, line in split_lines(data):
        try:
            obj = orjson.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            out.append(_record(obj, now, source))
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"line {number}: {exc}", reason="invalid_json", model="jsonlog"
                              ) from exc  # fmt: skip
        except ValidationError as exc:
            raise DecodeError(f"line {number}: {describe_validation_error('LogRecord', exc)}",
                              reason="validation", model="jsonlog") from exc  # fmt: skip
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise DecodeError(f"line {number}: {exc}", reason="validation", model="jsonlog"
                              ) from exc  # fmt: skip
    return out


def _record(obj: dict[str, Any], now: datetime, source: str) -> LogRecord:
    status = _first(obj, _STATUS)
    if status is None and isinstance(obj.get("response"), dict):
        status = obj["response"].get("status")
    duration_ms = _first(obj, ("duration_ms", "latency_ms"))
    if duration_ms is None:
        seconds = _first(obj, ("request_time", "duration"))
        duration_ms = float(seconds) * 1000 if seconds not in (None, "", "-") else None
    level = _LEVELS.get(str(obj.get("level") or obj.get("severity") or "").lower())
    labels = {k: str(obj[k])[:1024] for k in _LABELS if obj.get(k) not in (None, "")}
    message = obj.get("message") or obj.get("msg") or obj.get("request") or ""
    return LogRecord.model_validate({
        "time": _time(_first(obj, _TIME), now),
        "message": str(message)[:8192],
        "level": level,
        "labels": labels,
        "http_status": int(status) if status not in (None, "", "-") else None,
        "duration_ms": float(duration_ms) if duration_ms is not None else None,
        "source": str(obj.get("source") or source)[:256],
    })  # fmt: skip


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if obj.get(k) is not None:
            return obj[k]
    return None


def _time(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # epoch millis vs seconds
        return datetime.fromtimestamp(seconds, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
