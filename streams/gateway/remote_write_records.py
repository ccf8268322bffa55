"""Remote-write samples straight to `metrics` records, without a model per sample.

A remote-write body is the gateway's bulk path. The model path (``model_records``)
makes every sample a ``MetricSample`` (validated, given a random id and a clock
reading that are then replaced) and writes it as two JSON documents; the lean path
(``lean_records``) checks each series once against the same rules as ``MetricSample``
(name and label syntax, label count and lengths, finite values within ±1e300, a
representable time) and writes its samples as bytes from pieces made once per series.
Its records are the model path's byte for byte (keys, partitioning, content-derived
event ids, envelope), but for ``produced_at``, read once per request instead of once
per sample.

A series is known by its labels' encoded bytes: what a series is (its name, labels,
Kafka key and the JSON of both) is decoded once and kept, bounded in bytes, for the
next requests, which carry the same series again.

Whatever the lean path cannot vouch for (a series the model would refuse, labels that
are not UTF-8, a record too large for Kafka) sends the whole body down the model path,
so every error is the model's, worded as before.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError as ProtobufError

from connectors.sources.body import MAX_ITEMS, too_many
from connectors.sources.remote_write import RemoteWrite, series_error, series_samples
from connectors.sources.remote_write_pb import Label
from schemas.envelope import utcnow
from schemas.telemetry import series_key
from schemas.types import (
    LABEL_KEY_PATTERN,
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_MAGNITUDE,
    MAX_METRIC_NAME,
    METRIC_NAME_PATTERN,
)
from streams.gateway.records import Outcome, RecordMaker, TimeBounds
from streams.gateway.writer import MAX_RECORD_BYTES

_NAME = re.compile(METRIC_NAME_PATTERN).fullmatch
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN).fullmatch
_UTC_Z = orjson.OPT_UTC_Z
_UNIT_VALUE = b',"unit":null,"value":'
_MODEL_ERRORS = (ValueError, OverflowError, OSError)
KNOWN_BYTES = 64 * 1024 * 1024
"""What the known series may hold per process (their labels' bytes, key, JSON and an
allowance for the objects): about 80,000 series of a node exporter's size."""
KNOWN_SERIES_BYTES = 8 * 1024
"""A series whose labels take more is decoded every time instead of being kept."""


def _metric_key(m: Any) -> bytes:
    return str(m.series_key()).encode()


def model_records(out: Outcome, request: Any, topic: str, bounds: TimeBounds,
                  tenant: str) -> None:  # fmt: skip
    """``out``'s item errors and records for a parsed ``WriteRequest``, one
    ``MetricSample`` per sample: invalid series are named first, then every sample of
    the valid ones is checked against the time bounds and written."""
    batch = RemoteWrite()
    for i, series in enumerate(request.timeseries):
        try:
            series_samples(i, series, batch)
        except _MODEL_ERRORS as exc:  # pydantic's ValidationError is a ValueError
            batch.errors.append(series_error(i, series, exc))
    out.skipped = batch.skipped
    for e in batch.errors:
        out.reject(e.position, e.message)
    maker = RecordMaker(out, topic, _metric_key, bounds, tenant)
    for position, sample in zip(batch.positions, batch.samples, strict=True):
        maker.add(position, sample)


class _Known:
    """What one series is, decoded once: its Kafka key and the JSON of its name and
    labels as they stand in every record of it."""

    __slots__ = ("described", "key", "size")

    def __init__(self, name: str, labels: dict[str, str], size: int) -> None:
        self.key = series_key(name, labels).encode()
        self.described = (b'"kind":"gauge","labels":'
                          + orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)
                          + b',"name":' + orjson.dumps(name))  # fmt: skip
        self.size = size + len(self.key) + len(self.described)


class _KnownSeries:
    """Series by their labels' encoded bytes, forgotten all at once when full (a fleet
    that outgrew the bound decodes its series again, nothing worse)."""

    def __init__(self, limit: int = KNOWN_BYTES) -> None:
        self.limit = limit
        self.held = 0
        self.series: dict[tuple[bytes, ...], _Known | None] = {}
        self._lock = threading.Lock()

    def learn(self, labels_raw: tuple[bytes, ...]) -> _Known | None:
        """The series, or None when the model would refuse it (left to the model path,
        which names the problem). Raises protobuf's DecodeError for labels that are not
        UTF-8 (the model path refuses the body)."""
        labels: dict[str, str] = {}
        for raw in labels_raw:
            label = Label.FromString(raw)
            labels[label.name] = label.value
        name = labels.pop("__name__", "")
        size = sum(map(len, labels_raw)) + 64 * len(labels_raw)
        known = _Known(name, labels, size) if _plain(name, labels) else None
        if known is not None and size <= KNOWN_SERIES_BYTES:
            with self._lock:
                if self.held + known.size > self.limit:
                    self.series, self.held = {}, 0
                self.series[labels_raw] = known
                self.held += known.size
        return known


def _plain(name: str, labels: dict[str, str]) -> bool:
    """Whether ``MetricSample`` takes this name and label set as it is."""
    if len(name) > MAX_METRIC_NAME or not _NAME(name) or len(labels) > MAX_LABELS:
        return False
    return all(len(v) <= MAX_LABEL_VALUE and len(k) <= MAX_LABEL_KEY and _LABEL_KEY(k)
               for k, v in labels.items())  # fmt: skip


_known = _KnownSeries()


def lean_records(out: Outcome, request: Any, topic: str, bounds: TimeBounds,
                 tenant: str) -> bool:  # fmt: skip
    """``model_records``' records for a parsed ``RawWriteRequest`` into ``out``; False
    (``out`` to be discarded) when a series needs the model path. DecodeError for a
    body of more than ``MAX_ITEMS`` samples."""
    plan: list[tuple[_Known, int]] = []
    values: list[float] = []
    stamps: list[int] = []  # per sample: its time's index in `times`
    times: list[datetime] = []  # the request's distinct times (a scrape shares one)
    time_of: dict[int, int] = {}
    known_series, learn = _known.series, _known.learn
    fromtimestamp, isfinite, skipped = datetime.fromtimestamp, math.isfinite, 0
    try:
        for series in request.timeseries:
            labels_raw = tuple(series.labels)
            known = known_series.get(labels_raw) or learn(labels_raw)
            if known is None:
                return False
            plan.append((known, len(values)))
            samples = series.samples
            if len(values) + skipped + len(samples) > MAX_ITEMS:
                raise too_many("samples", "WriteRequest")
            for s in samples:
                v = s.value
                if not isfinite(v):
                    skipped += 1
                elif abs(v) > MAX_MAGNITUDE:
                    return False
                else:
                    values.append(v)
                    millis = s.timestamp
                    if (k := time_of.get(millis)) is None:
                        k = time_of[millis] = len(times)
                        times.append(fromtimestamp(millis / 1000, UTC))
                    stamps.append(k)
    except (*_MODEL_ERRORS, ProtobufError):
        return False
    out.skipped = skipped
    if not values:
        return True
    # one JSON document per list, split at the commas (no number or time holds one)
    value_json = orjson.dumps(values)[1:-1].split(b",")
    time_json = orjson.dumps(times, option=_UTC_Z)[1:-1].split(b",")
    envelope = b',"schema_version":1,"tenant":' + orjson.dumps(tenant) + b',"time":'
    produced = b',"produced_at":' + orjson.dumps(utcnow(), option=_UTC_Z) + envelope
    latest, earliest = bounds.now + bounds.ahead, bounds.now - bounds.behind
    within = [earliest <= at <= latest for at in times]
    scope, seen = f"{out.route}\x00".encode(), dict[bytes, int]()
    records, reject, sha256 = out.records, out.reject, hashlib.sha256
    ends = [first for _, first in plan[1:]] + [len(values)]
    for position, ((known, first), end) in enumerate(zip(plan, ends, strict=True)):
        if first == end:
            continue
        key, content_head = known.key, b"{" + known.described + envelope
        record_head = b'",' + known.described + produced
        for j in range(first, end):
            k = stamps[j]
            if not within[k]:
                reject(position, bounds.check("MetricSample", times[k]) or "")
                continue
            tail = time_json[k] + _UNIT_VALUE + value_json[j] + b"}"
            digest = sha256(scope + content_head + tail).digest()
            if digest in seen:  # RecordMaker.event_id, inline: the same content again
                seen[digest] += 1
                digest = sha256(digest + (seen[digest] - 1).to_bytes(4, "big")).digest()
            else:
                seen[digest] = 1
            value = b'{"event_id":"' + digest[:16].hex().encode() + record_head + tail
            if len(key) + len(value) > MAX_RECORD_BYTES:
                return False
            records.append((topic, key, value))
    out.accepted = len(records)
    return True
