"""Prometheus remote-write v1: snappy (block format) + protobuf WriteRequest.

Stale markers (Prometheus' special NaN written when a series disappears) and other
non-finite values are not samples tocsin can use; they are counted by the caller
from ``RemoteWrite.skipped`` rather than silently lost.

Item by item, as Mimir and Cortex do: a series with an invalid sample or label is an
entry of ``RemoteWrite.errors`` (named by its index and ``__name__``) and the other
series' samples still decode. What makes the body unusable (not snappy, not a
WriteRequest, more than ``MAX_ITEMS`` samples) raises DecodeError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cramjam
from google.protobuf.message import DecodeError as ProtobufError
from pydantic import ValidationError

from connectors.sources.batches import ItemError
from connectors.sources.body import MAX_INFLATED, MAX_ITEMS, too_many
from connectors.sources.remote_write_pb import WriteRequest
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.telemetry import MetricSample


@dataclass
class RemoteWrite:
    samples: list[MetricSample] = field(default_factory=list)
    skipped: int = 0  # stale markers and non-finite values
    errors: list[ItemError] = field(default_factory=list)  # by series index
    positions: list[int] = field(default_factory=list)  # each sample's series index


def decode_remote_write(body: bytes) -> RemoteWrite:
    """The samples of every valid series; DecodeError for the body as a whole."""
    request = parse_write_request(body)
    out = RemoteWrite()
    for i, series in enumerate(request.timeseries):
        try:
            series_samples(i, series, out)
        except (ValidationError, ValueError, OverflowError, OSError) as exc:
            out.errors.append(series_error(i, series, exc))
    return out


def parse_write_request(body: bytes, message: Any = WriteRequest, counted: bool = True) -> Any:
    """The WriteRequest of a snappy body, at most ``MAX_ITEMS`` samples in it;
    DecodeError for a body that is not one. ``message`` may be another declaration
    of the same wire format (``RawWriteRequest``); without ``counted`` the caller
    counts the samples against ``MAX_ITEMS`` as it reads them."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise DecodeError(f"body is not snappy block-compressed: {exc}",
                          reason="invalid_encoding", model="WriteRequest") from exc  # fmt: skip
    if size > MAX_INFLATED:  # the snappy header says how large: refused before inflating
        raise DecodeError(f"inflated body would be {size} bytes, over {MAX_INFLATED}",
                          reason="too_large", model="WriteRequest")  # fmt: skip
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:
        raise DecodeError(f"body is not snappy block-compressed: {exc}",
                          reason="invalid_encoding", model="WriteRequest") from exc  # fmt: skip
    request = message()
    try:
        request.ParseFromString(raw)
    except (ProtobufError, RecursionError, ValueError) as exc:
        raise DecodeError(f"body is not a protobuf WriteRequest: {exc}",
                          reason="invalid_protobuf", model="WriteRequest") from exc  # fmt: skip
    del raw
    if counted and sum(len(series.samples) for series in request.timeseries) > MAX_ITEMS:
        raise too_many("samples", "WriteRequest")
    return request


def series_error(i: int, series: Any, exc: Exception) -> ItemError:
    """The error of series ``i``, named by its position and ``__name__``."""
    name = next((lab.value for lab in series.labels if lab.name == "__name__"), "")
    why = (describe_validation_error("MetricSample", exc)
           if isinstance(exc, ValidationError) else str(exc))  # fmt: skip
    return ItemError(i, f"timeseries {i} ({name[:80] or 'no __name__'}): {why}")


def series_samples(i: int, series: Any, out: RemoteWrite) -> None:
    """Append the series' samples, all of them or none."""
    labels = {lab.name: lab.value for lab in series.labels}
    name = labels.pop("__name__", "")
    samples: list[MetricSample] = []
    skipped = 0
    for s in series.samples:
        if not math.isfinite(s.value):
            skipped += 1
            continue
        at = datetime.fromtimestamp(s.timestamp / 1000, UTC)
        samples.append(MetricSample(name=name, value=s.value, labels=labels, time=at))
    out.samples += samples
    out.positions += [i] * len(samples)
    out.skipped += skipped


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
