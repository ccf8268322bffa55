"""OTLP/HTTP JSON metrics (``ExportMetricsServiceRequest``): gauges, sums and the
count/sum of histograms. Resource and data-point attributes become labels (dots in
keys are kept: ``service.name``); int64 values arrive as JSON strings, as the OTLP
JSON mapping requires."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import MetricSample

_UNSAFE_KEY = re.compile(r"[^a-zA-Z0-9_.\-]")
_UNSAFE_NAME = re.compile(r"[^a-zA-Z0-9_:.\-]")


def decode_otlp(data: bytes) -> list[MetricSample]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"OTLP JSON: {exc}", reason="invalid_json", model="otlp") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceMetrics"), list):
        raise DecodeError("resourceMetrics: required list", reason="validation", model="otlp")
    out: list[MetricSample] = []
    for r, rm in enumerate(doc["resourceMetrics"]):
        where = f"resourceMetrics.{r}"
        try:
            res_labels = _attributes(_get(rm, "resource", {}).get("attributes", []))
            for s, sm in enumerate(_get(rm, "scopeMetrics", [])):
                for m, metric in enumerate(_get(sm, "metrics", [])):
                    where = f"resourceMetrics.{r}.scopeMetrics.{s}.metrics.{m}"
                    out += _metric(metric, res_labels)
        except ValidationError as exc:
            raise DecodeError(f"{where}: {describe_validation_error('MetricSample', exc)}",
                              reason="validation", model="otlp") from exc  # fmt: skip
        except (TypeError, ValueError, AttributeError, OverflowError, OSError, KeyError) as exc:
            raise DecodeError(f"{where}: {type(exc).__name__}: {exc}", reason="validation",
                              model="otlp") from exc  # fmt: skip
    return out


def _get(obj: Any, key: str, default: Any) -> Any:
    if not isinstance(obj, dict):
        raise TypeError(f"expected an object, got {type(obj).__name__}")
    return obj.get(key, default)


def _attributes(attrs: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    for a in attrs:
        value = a.get("value") or {}
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if kind in value:
                labels[_UNSAFE_KEY.sub("_", str(a["key"])) or "_"] = str(value[kind])
                break
    return labels


def _metric(metric: Any, res_labels: dict[str, str]) -> list[MetricSample]:
    name = _UNSAFE_NAME.sub("_", str(_get(metric, "name", "")))
    unit = metric.get("unit") or None
    out: list[MetricSample] = []
    for shape in ("gauge", "sum"):
        body = metric.get(shape)
        if body is None:
            continue
        kind = "counter" if shape == "sum" and body.get("isMonotonic") else "gauge"
        for p in body.get("dataPoints", []):
            value = p["asDouble"] if "asDouble" in p else int(p.get("asInt", 0))
            out.append(_sample(name, value, p, res_labels, kind, unit))
    hist = metric.get("histogram")
    if hist is not None:
        for p in hist.get("dataPoints", []):
            out.append(_sample(f"{name}_count", int(p.get("count", 0)), p, res_labels,
                               "counter", None))  # fmt: skip
            if "sum" in p:
                out.append(_sample(f"{name}_sum", p["sum"], p, res_labels, "counter", unit))
    return out


def _sample(name: str, value: Any, point: Any, res_labels: dict[str, str], kind: str,
            unit: str | None) -> MetricSample:  # fmt: skip
    labels = res_labels | _attributes(point.get("attributes", []))
    nanos = int(point.get("timeUnixNano", 0))
    return MetricSample.model_validate({
        "name": name, "value": value, "labels": labels, "kind": kind,
        "unit": unit, "time": datetime.fromtimestamp(nanos / 1e9, UTC),
    })  # fmt: skip
