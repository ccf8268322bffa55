"""The lean remote-write path writes the records the model path writes (one
MetricSample per sample): same keys, same bytes but for produced_at, same event ids,
same item errors, skipped values and refusals."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta

import cramjam
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sources.body import MAX_ITEMS
from connectors.sources.remote_write import encode_remote_write, parse_write_request
from connectors.sources.remote_write_pb import RawWriteRequest
from schemas import MetricSample, decode
from schemas.errors import DecodeError
from schemas.types import MAX_LABEL_VALUE, MAX_LABELS
from streams.gateway.decoding import Topics, decode_remote_write_body
from streams.gateway.records import Outcome, TimeBounds
from streams.gateway.remote_write_records import lean_records, model_records

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)
BOUNDS = TimeBounds(NOW, timedelta(minutes=5), timedelta(days=7))
TOPICS = Topics("metrics", "logs", "alerts", "deadletter")
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]  # Prometheus' marker
_PRODUCED = re.compile(rb'"produced_at":"[^"]*"')

Series = list[tuple[dict[str, str], list[tuple[float, int]]]]


def _model(body: bytes, tenant: str = "default") -> Outcome:
    out = Outcome("remote_write")
    try:
        model_records(out, parse_write_request(body), "metrics", BOUNDS, tenant)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    return out


def _lean(body: bytes, tenant: str = "default") -> tuple[bool, Outcome]:
    out = Outcome("remote_write")
    request = parse_write_request(body, RawWriteRequest, counted=False)
    return lean_records(out, request, "metrics", BOUNDS, tenant), out


def _same(lean: Outcome, model: Outcome) -> None:
    """Equal outcomes: every record byte for byte once produced_at is set aside."""
    assert [(t, k) for t, k, _ in lean.records] == [(t, k) for t, k, _ in model.records]
    for (_, _, a), (_, _, b) in zip(lean.records, model.records, strict=True):
        assert _PRODUCED.sub(b"", a) == _PRODUCED.sub(b"", b)
        assert _PRODUCED.search(a) is not None
    assert (lean.accepted, lean.rejected, lean.errors, lean.skipped, lean.refused) == (
        model.accepted, model.rejected, model.errors, model.skipped, model.refused)  # fmt: skip


def _check_lean(series: Series, tenant: str = "default") -> Outcome:
    body = encode_remote_write(series)
    taken, lean = _lean(body, tenant)
    assert taken, "a series the lean path should have written itself"
    _same(lean, _model(body, tenant))
    return lean


def test_records_equal_the_models_for_escapes_odd_values_and_time_bounds() -> None:
    ahead, behind = MS + 6 * 60_000, MS - 8 * 86_400_000
    series: Series = [
        ({"__name__": "cpu", "host": "a"}, [(1.5, MS), (2.0, MS + 1), (-0.0, MS + 2)]),
        ({"__name__": "plain_no_labels"}, [(0.0, MS)]),
        (
            {
                "__name__": "escapes",
                "path": 'C:\\dir,"quoted"',
                "nl": "a\nb",
                "u": "zürich ✓",
                "empty": "",
                "b": "x=y",
            },
            [(1e300, MS), (-1e300, MS)],
        ),
        ({"__name__": "odd:name.with-dots", "a.b-c": "1"}, [(1e-320, MS), (123456789.125, MS)]),
        (
            {"__name__": "gaps", "k": "v"},
            [
                (float("nan"), MS),
                (STALE, MS + 1),
                (float("inf"), MS + 2),
                (float("-inf"), MS + 3),
                (7.0, MS + 4),
            ],
        ),
        ({"__name__": "bounds", "k": "v"}, [(1.0, ahead), (2.0, behind), (3.0, MS)]),
        ({"__name__": "dupes"}, [(1.0, MS), (1.0, MS), (1.0, MS)]),  # one event each
        ({"__name__": "cpu", "host": "a"}, [(1.5, MS)]),  # the first series again
        ({"__name__": "stale_only"}, [(STALE, MS)]),
        ({"__name__": "no_samples", "k": "v"}, []),
        (
            {"__name__": "long", **{f"l{i}": "v" * MAX_LABEL_VALUE for i in range(MAX_LABELS)}},
            [(1.0, MS)],
        ),
    ]
    out = _check_lean(series, tenant="acme")
    assert out.skipped == 5 and out.rejected == 2
    assert "ahead of the gateway's clock" in out.errors[0][1]
    docs = [orjson.loads(v) for _, _, v in out.records]
    assert len({d["event_id"] for d in docs}) == len(docs), "a repeated sample is its own event"
    assert {d["tenant"] for d in docs} == {"acme"}
    escaped = 'escapes{b="x=y",empty="",nl="a\\nb",path="C:\\\\dir,\\"quoted\\"",u="zürich ✓"}'
    assert escaped.encode() in {k for _, k, _ in out.records}
    for _, key, value in out.records:  # what the processor reads back
        sample = decode(MetricSample, value)
        assert sample.series_key().encode() == key


def test_a_resend_writes_the_same_event_ids() -> None:
    series: Series = [({"__name__": "cpu", "host": f"h{i}"}, [(float(i), MS)]) for i in range(50)]
    first, again = _check_lean(series), _check_lean(series)
    ids = [orjson.loads(v)["event_id"] for _, _, v in first.records]
    assert ids == [orjson.loads(v)["event_id"] for _, _, v in again.records]


@pytest.mark.parametrize(
    "bad",
    [
        {"__name__": "9starts_with_digit"},
        {"__name__": ""},
        {"__name__": "ok", "bad-key!": "v"},
        {"__name__": "ok", "too_long": "v" * (MAX_LABEL_VALUE + 1)},
        {"__name__": "ok", **{f"l{i}": "v" for i in range(MAX_LABELS + 1)}},
        {"__name__": "x" * 257},
    ],
)
def test_a_series_the_model_refuses_is_named_as_the_model_names_it(bad: dict[str, str]) -> None:
    series: Series = [({"__name__": "good"}, [(1.0, MS)]), (bad, [(1.0, MS)])]
    body = encode_remote_write(series)
    assert not _lean(body)[0]
    out = decode_remote_write_body(TOPICS, body, BOUNDS)
    model = _model(body)
    assert out.errors == model.errors and out.errors[0][0] == 1
    assert "timeseries 1" in out.errors[0][1]
    assert [r[:2] for r in out.records[:-1]] == [r[:2] for r in model.records]
    assert out.records[-1][0] == "deadletter"


@pytest.mark.parametrize(("value", "millis"), [(2e300, MS), (1.0, 2**62), (1.0, -(2**62))])
def test_values_and_times_the_model_refuses_take_the_model_path(value: float, millis: int) -> None:
    body = encode_remote_write([({"__name__": "m"}, [(1.0, MS), (value, millis)])])
    assert not _lean(body)[0]
    out, model = decode_remote_write_body(TOPICS, body, BOUNDS), _model(body)
    assert out.rejected == model.rejected == 1 and out.errors == model.errors
    assert out.accepted == 0


def test_labels_that_are_not_utf8_refuse_the_body_as_before() -> None:
    label = b"\x0a\x04host\x12\x02\xff\xfe"  # Label{name: "host", value: <invalid UTF-8>}
    series = b"\x0a" + bytes([len(label)]) + label
    sample = b"\x09" + struct.pack("<d", 1.0) + b"\x10\x01"
    ts = series + b"\x12" + bytes([len(sample)]) + sample
    body = bytes(cramjam.snappy.compress_raw(b"\x0a" + bytes([len(ts)]) + ts))
    assert not _lean(body)[0]
    out = decode_remote_write_body(TOPICS, body, BOUNDS)
    assert out.refused is not None and out.refused == _model(body).refused
    assert out.refused[0] == 400 and out.reason == "invalid_protobuf"


def test_more_samples_than_allowed_are_refused_as_before() -> None:
    body = encode_remote_write([({"__name__": "m"}, [(1.0, MS + i) for i in range(MAX_ITEMS + 1)])])
    out = decode_remote_write_body(TOPICS, body, BOUNDS)
    assert out.refused is not None and out.refused == _model(body).refused
    assert out.refused[0] == 413 and not out.accepted


_label_keys = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.\-]{0,12}", fullmatch=True)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).filter(
        lambda v: v != v or abs(v) <= 1e300 or abs(v) == float("inf")
    ),
    st.just(STALE),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(_label_keys, st.text(max_size=12), max_size=5),
            st.lists(
                st.tuples(_values, st.integers(MS - 8 * 86_400_000, MS + 600_000)), max_size=4
            ),
        ),
        max_size=6,
    )
)
def test_any_valid_series_write_the_models_records(series: Series) -> None:
    _check_lean([({**labels, "__name__": "m"}, samples) for labels, samples in series])
