"""Prometheus remote-write v1: snappy (block format) + protobuf WriteRequest.

Stale markers (Prometheus' special NaN written when a series disappears) and other
non-finite values are not samples tocsin can use; they are counted by the caller
from ``RemoteWrite.skipped`` rather than silently lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cramjam
from google.protobuf.message import DecodeError as ProtobufError
from pydantic import ValidationError

from connectors.sources.remote_write_pb import WriteRequest
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import MetricSample

MAX_INFLATED = 64 * 1024 * 1024


@dataclass
class RemoteWrite:
    samples: list[MetricSample] = field(default_factory=list)
    skipped: int = 0  # stale markers and non-finite values


def decode_remote_write(body: bytes) -> RemoteWrite:
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise DecodeError(f"body is not snappy block-compressed: {exc}",
                          reason="invalid_encoding", model="WriteRequest") from exc  # fmt: skip
    if len(raw) > MAX_INFLATED:
        raise DecodeError("inflated body too large", reason="too_large", model="WriteRequest")
    request = WriteRequest()
    try:
        request.ParseFromString(raw)
    except ProtobufError as exc:
        raise DecodeError(f"body is not a protobuf WriteRequest: {exc}",
                          reason="invalid_protobuf", model="WriteRequest") from exc  # fmt: skip
    out = RemoteWrite()
    for i, series in enumerate(request.timeseries):
        labels = {lab.name: lab.value for lab in series.labels}
        name = labels.pop("__name__", "")
        for s in series.samples:
            if not math.isfinite(s.value):
                out.skipped += 1
                continue
            try:
                out.samples.append(MetricSample(
                    name=name, value=s.value, labels=labels,
                    time=datetime.fromtimestamp(s.timestamp / 1000, UTC),
                ))  # fmt: skip
            except (ValidationError, ValueError, OverflowError, OSError) as exc:
                why = (describe_validation_error("MetricSample", exc)
                       if isinstance(exc, ValidationError) else str(exc))  # fmt: skip
                raise DecodeError(f"timeseries {i} ({name or 'no __name__'}): {why}",
                                  reason="validation", model="WriteRequest") from exc  # fmt: skip
    return out


def encode_remote_write(series: list[tuple[dict[str, str], list[tuple[float, int]]]]) -> bytes:
    """Build a snappy-compressed WriteRequest (tests and benchmarks act as Prometheus)."""
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for k in sorted(labels):
            ts.labels.add(name=k, value=labels[k])
        for value, millis in samples:
            ts.samples.add(value=value, timestamp=millis)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
