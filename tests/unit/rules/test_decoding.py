"""The processor's input views validate exactly like the public models, and the feed
sorts every bad record into a dead-letter reason instead of raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import SchemaValidator

from processors.rules.engine import RuleEngine
from schemas import DecodeError, LogRecord, MetricSample, decode
from schemas.rules import load_rule_files
from streams.processor.decoding import LOG_FIELDS, METRIC_FIELDS, decode_log, decode_metric
from streams.processor.feed import (
    ACCEPTED,
    FUTURE,
    INVALID,
    LATE_SAMPLE,
    epoch_seconds,
    feed_log,
    feed_metric,
    feed_metrics,
    first_accepting_ms,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
AT = NOW.isoformat()
GOOD_METRIC: dict[str, Any] = {"name": "cpu_percent", "value": 42.0, "time": AT,
                               "labels": {"host": "h1"}}  # fmt: skip
GOOD_LOG: dict[str, Any] = {"time": AT, "http_status": 503, "duration_ms": 12.5,
                            "labels": {"service": "api"}}  # fmt: skip

BAD_METRICS = [
    b"not json",
    b"[1, 2]",
    b'{"name": "cpu_percent", "value": NaN, "time": "2026-01-01T00:00:00Z"}',
    b'{"name": "cpu_percent", "value": Infinity, "time": "2026-01-01T00:00:00Z"}',
    b'{"name": "cpu_percent", "value": 1e999, "time": "2026-01-01T00:00:00Z"}',
    # finite, but a window of them overflows: an upstream overflow, not a measurement
    orjson.dumps({**GOOD_METRIC, "value": 1.79e308}),
    orjson.dumps({**GOOD_METRIC, "value": -1e301}),
    orjson.dumps({**GOOD_METRIC, "value": "high"}),
    orjson.dumps({k: v for k, v in GOOD_METRIC.items() if k != "time"}),
    orjson.dumps({k: v for k, v in GOOD_METRIC.items() if k != "name"}),
    orjson.dumps({**GOOD_METRIC, "kind": "histogram"}),
    orjson.dumps({**GOOD_METRIC, "time": "2026-01-01T00:00:00"}),  # naive
    orjson.dumps({**GOOD_METRIC, "labels": {"bad key": "x"}}),
    orjson.dumps({**GOOD_METRIC, "event_id": None}),
    orjson.dumps({**GOOD_METRIC, "event_id": ""}),
    orjson.dumps({**GOOD_METRIC, "produced_at": None}),
    orjson.dumps({**GOOD_METRIC, "produced_at": "yesterday"}),
    orjson.dumps({**GOOD_METRIC, "unexpected": 1}),
    orjson.dumps({**GOOD_METRIC, "schema_version": 2}),
]
BAD_LOGS = [
    b"{",
    orjson.dumps({**GOOD_LOG, "http_status": 99}),
    orjson.dumps({**GOOD_LOG, "http_status": 600}),
    orjson.dumps({**GOOD_LOG, "duration_ms": -1}),
    b'{"time": "2026-01-01T00:00:00Z", "duration_ms": NaN}',
    orjson.dumps({**GOOD_LOG, "duration_ms": 1.79e308}),  # its p95 overflowed the sketch
    orjson.dumps({**GOOD_LOG, "level": "loud"}),
    orjson.dumps({k: v for k, v in GOOD_LOG.items() if k != "time"}),
    orjson.dumps({**GOOD_LOG, "event_id": None}),
]


def _outcome(fn: Any, raw: bytes) -> tuple[str, str, str] | dict[str, Any]:
    try:
        m = fn(raw)
    except DecodeError as exc:
        return (str(exc), exc.reason, exc.model)
    return m.model_dump(exclude={"event_id", "produced_at"})


@pytest.mark.parametrize("raw", BAD_METRICS)
def test_metric_view_refuses_what_metric_sample_refuses_with_the_same_message(raw: bytes) -> None:
    public = _outcome(lambda r: decode(MetricSample, r), raw)
    assert isinstance(public, tuple), "the corpus must be invalid"
    assert _outcome(decode_metric, raw) == public


@pytest.mark.parametrize("raw", BAD_LOGS)
def test_log_view_refuses_what_log_record_refuses_with_the_same_message(raw: bytes) -> None:
    public = _outcome(lambda r: decode(LogRecord, r), raw)
    assert isinstance(public, tuple), "the corpus must be invalid"
    assert _outcome(decode_log, raw) == public


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
field_names = st.sampled_from(
    ["name", "value", "time", "labels", "kind", "unit", "event_id", "produced_at", "tenant",
     "schema_version", "http_status", "duration_ms", "message", "level", "source", "x"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(field_names, json_values | st.just(AT), max_size=6),
    st.sampled_from([GOOD_METRIC, GOOD_LOG]),
)
def test_views_and_public_models_agree_on_arbitrary_documents(
    extra: dict[str, Any], base: dict[str, Any]
) -> None:
    raw = orjson.dumps({**base, **extra}, option=orjson.OPT_NON_STR_KEYS)
    assert _outcome(decode_metric, raw) == _outcome(lambda r: decode(MetricSample, r), raw)
    assert _outcome(decode_log, raw) == _outcome(lambda r: decode(LogRecord, r), raw)
    assert _fields(METRIC_FIELDS, raw) == _public_fields(MetricSample, raw)
    assert _fields(LOG_FIELDS, raw) == _public_fields(LogRecord, raw)


def _fields(validator: SchemaValidator, raw: bytes) -> dict[str, Any] | None:
    try:
        return dict(validator.validate_json(raw))
    except ValidationError:
        return None


def _public_fields(model: type[MetricSample | LogRecord], raw: bytes) -> dict[str, Any] | None:
    """The public model's verdict, as the fields the document set (defaults aside)."""
    try:
        m = decode(model, raw)
    except DecodeError:
        return None
    return {k: getattr(m, k) for k in m.model_fields_set}


@pytest.mark.parametrize("raw", [*BAD_METRICS, orjson.dumps(GOOD_METRIC)])
def test_metric_fields_validator_accepts_exactly_what_metric_sample_accepts(raw: bytes) -> None:
    assert _fields(METRIC_FIELDS, raw) == _public_fields(MetricSample, raw)


@pytest.mark.parametrize(
    "raw",
    [*BAD_LOGS, orjson.dumps(GOOD_LOG), orjson.dumps({**GOOD_LOG, "source": "  lb "})],
)
def test_log_fields_validator_accepts_exactly_what_log_record_accepts(raw: bytes) -> None:
    assert _fields(LOG_FIELDS, raw) == _public_fields(LogRecord, raw)


def test_too_many_labels_or_too_long_values_are_refused_by_both() -> None:
    many = orjson.dumps({**GOOD_METRIC, "labels": {f"k{i}": "v" for i in range(65)}})
    long = orjson.dumps({**GOOD_METRIC, "labels": {"k": "v" * 1025}})
    huge = orjson.dumps({**GOOD_LOG, "message": "m" * 70_000})
    assert _fields(METRIC_FIELDS, many) is None and _public_fields(MetricSample, many) is None
    assert _fields(METRIC_FIELDS, long) is None and _public_fields(MetricSample, long) is None
    assert _fields(LOG_FIELDS, huge) is None and _public_fields(LogRecord, huge) is None


PACK = load_rule_files([Path("rules/default.yaml")])
SKEW = timedelta(minutes=5)


def test_feed_sorts_bad_records_into_reasons_and_keeps_going() -> None:
    e = RuleEngine(PACK.rules, PACK.settings)
    now = NOW.timestamp()
    nan = feed_metric(e, BAD_METRICS[2], now, SKEW)
    assert (nan.outcome, nan.reason) == (INVALID, "validation")
    assert "MetricSample.value" in nan.error
    unknown = feed_metric(e, orjson.dumps({**GOOD_METRIC, "kind": "histogram"}), now, SKEW)
    assert unknown.outcome == INVALID and "MetricSample.kind" in unknown.error
    garbage = feed_log(e, b"\xff\xfe", now, SKEW)
    assert (garbage.outcome, garbage.reason) == (INVALID, "invalid_json")
    ahead = (NOW + timedelta(minutes=6)).isoformat()
    future = feed_metric(e, orjson.dumps({**GOOD_METRIC, "time": ahead}), now, SKEW)
    assert (future.outcome, future.reason) == (FUTURE, "future_timestamp")
    within = (NOW + timedelta(minutes=4)).isoformat()
    assert feed_metric(e, orjson.dumps({**GOOD_METRIC, "time": within}), now, SKEW) is ACCEPTED
    logs = RuleEngine(PACK.rules, PACK.settings)  # logs have their own partitions
    assert feed_log(logs, orjson.dumps(GOOD_LOG), now, SKEW) is ACCEPTED
    old = (NOW - timedelta(minutes=10)).isoformat()
    assert feed_metric(e, orjson.dumps({**GOOD_METRIC, "time": old}), now, SKEW) is LATE_SAMPLE


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_the_feeds_epoch_is_timestamp_to_the_bit(at: datetime) -> None:
    # through the validator, as the feed gets them (pydantic's fixed-offset tzinfo)
    raw = orjson.dumps({**GOOD_METRIC, "time": at.isoformat()})
    try:
        parsed = METRIC_FIELDS.validate_json(raw)["time"]
    except ValidationError:
        assume(False)  # e.g. a historical offset with seconds: refused, not fed
    assert isinstance(parsed, datetime)
    assert epoch_seconds(parsed) == parsed.timestamp()


@settings(max_examples=500, deadline=None)
@given(
    st.floats(min_value=-1e10, max_value=3e11, allow_nan=False),
    st.sampled_from([0.0, 0.001, 1.0, 300.0, 86400.0 * 365]),
    st.integers(min_value=-(2**40), max_value=2**48) | st.floats(-1e12, 1e15),
    st.integers(min_value=-3, max_value=3),
)
def test_the_int_future_check_decides_as_the_float_expression(
    t: float, ahead: float, ms: float, nudge: int
) -> None:
    # the feed accepts a record with ms >= first_accepting_ms without the float arithmetic
    first = first_accepting_ms(t, ahead)
    assert first >= 1
    for at in (ms, first + nudge):
        if at >= first:
            assert not t > at / 1000.0 + ahead
    if 1 < first < 2**63:
        assert t > (first - 1) / 1000.0 + ahead  # the least such ms: nothing accepted is left


def test_the_future_check_at_its_edge_and_without_a_kafka_timestamp() -> None:
    e = RuleEngine(PACK.rules, PACK.settings)
    at = NOW + SKEW + timedelta(milliseconds=1)
    raw = orjson.dumps({**GOOD_METRIC, "time": at.isoformat()})
    assert feed_metric(e, raw, NOW.timestamp(), SKEW).outcome == FUTURE
    assert feed_metric(e, raw, NOW.timestamp() + 0.001, SKEW) is ACCEPTED
    # no Kafka timestamp: the worker's clock decides (an hour ahead of now is refused)
    later = orjson.dumps(
        {**GOOD_METRIC, "time": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    )
    assert feed_metric(e, later, 0.0, SKEW).outcome == FUTURE


class _Recorder:
    """Stands in for a RuleEngine: records the event time each sample arrives with."""

    def __init__(self) -> None:
        self.overflows: list[tuple[str, dict[str, str]]] = []
        self.times: list[float] = []

    def process_metric(self, name: str, labels: dict[str, str], value: float, t: float,
                       series: str = "", route: bytes | None = None,
                       tenant: str = "default") -> None:  # fmt: skip
        self.times.append(t)


def test_a_run_of_records_gets_each_records_own_timestamp() -> None:
    # shared timestamps reuse the epoch; any change of instant or of offset recomputes it
    times = ["2026-01-01T12:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T14:00:00+02:00",
             "2026-01-01T14:00:00+02:00", "2026-01-01T12:00:00.5Z", "1969-12-31T23:59:59.25Z",
             "2026-01-01T12:00:00+00:00"]  # fmt: skip
    recs = [_Rec(orjson.dumps({**GOOD_METRIC, "time": at})) for at in times]
    engine = _Recorder()
    assert feed_metrics(cast(RuleEngine, engine), recs, timedelta(days=365 * 100)) == []
    assert engine.times == [datetime.fromisoformat(at).timestamp() for at in times]


class _Rec:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def value(self) -> bytes:
        return self.raw

    def key(self) -> bytes:
        return b"k"

    def timestamp(self) -> tuple[int, float]:
        return (1, NOW.timestamp() * 1000)


class _KafkaRec(_Rec):
    def __init__(self, raw: bytes, ms: int) -> None:
        super().__init__(raw)
        self.ms = ms

    def timestamp(self) -> tuple[int, float]:
        return (1, self.ms)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-2_000, 2_000)), min_size=1, max_size=12))
def test_a_run_refuses_exactly_the_records_ahead_of_their_kafka_timestamp(
    run: list[tuple[int, int]],
) -> None:
    # runs of a shared timestamp (checked with the int threshold from their second record
    # on) and lone timestamps (checked with the float expression) decide alike
    skew = timedelta(seconds=1)
    base = NOW.timestamp()
    recs, expected = [], []
    for instant, offset_ms in run:
        t = base + instant * 0.25
        raw = orjson.dumps({**GOOD_METRIC, "time": datetime.fromtimestamp(t, UTC).isoformat()})
        ms = round(base * 1000) + offset_ms
        recs.append(_KafkaRec(raw, ms))
        expected.append(t > ms / 1000.0 + skew.total_seconds())
    engine = _Recorder()
    rejected = feed_metrics(cast(RuleEngine, engine), recs, skew)
    refused = {id(rec) for rec, verdict in rejected if verdict.outcome == FUTURE}
    assert [id(rec) in refused for rec in recs] == expected
