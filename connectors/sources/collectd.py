"""collectd's JSON (write_kafka / write_http ``Format JSON``): an array of value lists.

``[{"values":[1901474177],"dstypes":["counter"],"dsnames":["value"],"time":1280959128,
"interval":10,"host":"leeloo","plugin":"cpu","plugin_instance":"0","type":"cpu",
"type_instance":"idle"}]`` becomes ``collectd_cpu_cpu{host,plugin_instance,type_instance}``;
a data source other than ``value`` is appended to the name (``collectd_load_load_shortterm``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import MetricSample

_UNSAFE = re.compile(r"[^a-zA-Z0-9_:]")
_COUNTERS = {"counter", "derive", "absolute"}


class _ValueList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    values: list[float | None]
    dstypes: list[str]
    dsnames: list[str]
    time: float
    host: str = Field(min_length=1)
    plugin: str = Field(min_length=1)
    plugin_instance: str = ""
    type: str = Field(min_length=1)
    type_instance: str = ""


def decode_collectd(data: bytes) -> list[MetricSample]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"collectd JSON: {exc}", reason="invalid_json", model="collectd"
                          ) from exc  # fmt: skip
    items = doc if isinstance(doc, list) else [doc]
    out: list[MetricSample] = []
    for i, item in enumerate(items):
        try:
            vl = _ValueList.model_validate(item)
            if not len(vl.values) == len(vl.dstypes) == len(vl.dsnames):
                raise DecodeError(f"item {i}: values, dstypes and dsnames differ in length",
                                  reason="validation", model="collectd")  # fmt: skip
            labels = {"host": vl.host}
            if vl.plugin_instance:
                labels["plugin_instance"] = vl.plugin_instance
            if vl.type_instance:
                labels["type_instance"] = vl.type_instance
            at = datetime.fromtimestamp(vl.time, UTC)
            for value, dstype, dsname in zip(vl.values, vl.dstypes, vl.dsnames, strict=True):
                if value is None:  # collectd writes null for NaN (a missing reading)
                    continue
                base = f"collectd_{vl.plugin}_{vl.type}"
                name = _UNSAFE.sub("_", base if dsname == "value" else f"{base}_{dsname}")
                out.append(
                    MetricSample(
                        name=name,
                        value=value,
                        time=at,
                        labels=labels,
                        kind="counter" if dstype in _COUNTERS else "gauge",
                    )
                )
        except ValidationError as exc:
            raise DecodeError(f"item {i}: {describe_validation_error('collectd', exc)}",
                              reason="validation", model="collectd") from exc  # fmt: skip
        except (ValueError, OverflowError, OSError) as exc:
            raise DecodeError(f"item {i}: {exc}", reason="validation", model="collectd"
                              ) from exc  # fmt: skip
    return out
