"""What a gateway request becomes: content-derived event ids, time bounds, records
that fit in Kafka and that the processor decodes as it decodes any other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Alert, DeadLetter, MetricSample, decode, encode
from schemas.types import MAX_ANNOTATIONS, MAX_LABEL_VALUE, MAX_LABELS, MAX_TEXT
from streams.gateway.records import Outcome, RecordMaker, TimeBounds
from streams.gateway.writer import MAX_RECORD_BYTES
from streams.processor.decoding import METRIC_FIELDS, decode_metric

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
BOUNDS = TimeBounds(NOW, timedelta(minutes=5), timedelta(days=7))


def _records(route: str, items: list[MetricSample]) -> Outcome:
    out = Outcome(route)
    maker = RecordMaker(out, "metrics", lambda m: m.series_key().encode(), BOUNDS)
    for i, item in enumerate(items):
        maker.add(i, item)
    return out


def _sample(value: float, **fields: object) -> MetricSample:
    return MetricSample.model_validate({"name": "cpu", "value": value, "time": NOW, **fields})


def _ids(out: Outcome) -> list[str]:
    return [orjson.loads(v)["event_id"] for _, _, v in out.records]


def test_ids_derive_from_route_and_content_and_repeat_on_a_resend() -> None:
    items = [_sample(1.0), _sample(2.0), _sample(1.0)]  # the third repeats the first
    first, again = _records("metrics", items), _records("metrics", list(reversed(items)))
    assert len(set(_ids(first))) == 3, "identical items in one request are distinct events"
    assert set(_ids(first)) == set(_ids(again))
    assert not set(_ids(first)) & set(_ids(_records("remote_write", items)))
    other_tenant = [_sample(1.0, tenant="acme")]
    assert _ids(_records("metrics", other_tenant))[0] not in _ids(first)
    given = _records("metrics", [_sample(1.0, event_id="client-chose-this")])
    assert _ids(given) == ["client-chose-this"]
    # a tenant decided by the credential replaces the item's, in the record and its id
    out = Outcome("metrics")
    RecordMaker(out, "metrics", lambda m: b"k", BOUNDS, tenant="acme").add(0, _sample(1.0))
    assert orjson.loads(out.records[0][2])["tenant"] == "acme"
    assert _ids(out) == _ids(_records("metrics", other_tenant))


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(-1e300, 1e300, allow_nan=False),
    labels=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True), st.text(max_size=40), max_size=8
    ),
)
def test_records_are_what_the_processor_decodes_and_encode_as_the_codec_does(
    value: float, labels: dict[str, str]
) -> None:
    out = _records("metrics", [_sample(value, labels=labels)])
    [(_, key, raw)] = out.records
    assert METRIC_FIELDS.validate_json(raw)["labels"] == labels
    sample = decode_metric(raw)
    assert sample.value == value and key == sample.series_key().encode()
    assert encode(decode(MetricSample, raw)) == raw


def test_times_beyond_the_bounds_are_item_errors_naming_the_field() -> None:
    out = _records("metrics", [_sample(1.0, time=NOW + timedelta(minutes=6)),
                               _sample(1.0, time=NOW - timedelta(days=8)),
                               _sample(1.0, time=NOW + timedelta(minutes=4))])  # fmt: skip
    assert (out.accepted, out.rejected) == (1, 2)
    assert [p for p, _ in out.errors] == [0, 1]
    assert out.errors[0][1].startswith("MetricSample.time: 2026-03-01T12:06:00+00:00 is more")
    assert "5 minutes ahead" in out.errors[0][1] and "7 days in the past" in out.errors[1][1]
    status, doc = out.answer()
    assert status == 400 and doc["accepted"] == 1 and doc["errors"][1]["position"] == 1


def test_an_alert_at_every_bound_fits_in_a_record_and_one_beyond_kafkas_limit_is_refused() -> None:
    labels = {f"l{i:03d}" + "x" * 124: "v" * MAX_LABEL_VALUE for i in range(MAX_LABELS)}
    notes = {f"n{i:03d}": "a" * MAX_TEXT for i in range(MAX_ANNOTATIONS)}
    fields = {"fingerprint": "f", "status": "firing", "rule": "r", "labels": labels,
              "annotations": notes, "summary": "s" * MAX_TEXT, "starts_at": NOW}  # fmt: skip
    out = Outcome("alertmanager")
    maker = RecordMaker(out, "alerts", lambda a: a.fingerprint.encode())
    maker.add(0, Alert.model_validate(fields))
    controls = {k: "\x01" * MAX_TEXT for k in notes}  # six bytes each in JSON
    maker.add(1, Alert.model_validate({**fields, "annotations": controls}))
    assert out.accepted == 1 and len(out.records[0][2]) < MAX_RECORD_BYTES
    assert decode(Alert, out.records[0][2]).labels == labels
    [(position, error)] = out.errors
    assert position == 1 and error.startswith("Alert.annotations: the record would be")


def test_a_dead_letter_keeps_a_bounded_prefix_its_size_and_digest() -> None:
    import hashlib

    raw = bytes(range(256)) * 8192  # 2 MiB
    letter = DeadLetter(source_topic="http:/v1/metrics", value=raw, reason="validation",
                        error="e" * 20_000)  # fmt: skip
    back = decode(DeadLetter, encode(letter))
    assert back.truncated and back.value_size == len(raw)
    assert back.value == raw[: 256 * 1024] and len(encode(letter)) < 400_000
    assert back.value_sha256 == hashlib.sha256(raw).hexdigest()
    assert back.error.endswith("(error text truncated)")
    small = DeadLetter(source_topic="t", value=b"abc", reason="r", error="e")
    assert not small.truncated and small.value_size == 3 and small.value == b"abc"


def test_a_request_costs_a_small_multiple_of_its_body_in_memory() -> None:
    """Measured with tracemalloc around the whole decoding of one request (on the
    decoding thread): the peak while decoding and what the request holds until Kafka
    acknowledged (its records and its one dead letter)."""
    import tracemalloc

    from streams.gateway.decoding import Topics
    from streams.gateway.decoding import decode_batch as _decode_batch

    gw = Topics("metrics", "logs", "alerts", "deadletter")
    now = datetime.now(UTC)
    bounds = TimeBounds(now, timedelta(minutes=5), timedelta(days=7))
    stamp = now.isoformat().encode()
    valid = b",".join(b'{"name":"cpu","value":%d,"time":"%s","labels":{"host":"a"}}' % (i, stamp)
                      for i in range(10_000))  # fmt: skip
    invalid = b",".join(b'{"name":"cpu","value":"x%d","time":"%s"}' % (i, stamp)
                        for i in range(10_000))  # fmt: skip
    _decode_batch(gw, "metrics", b"[" + valid[:500].rsplit(b",", 1)[0] + b"]", None, "", bounds)
    for body, accepted in ((b"[" + valid + b"]", 10_000), (b"[" + invalid + b"]", 0)):
        tracemalloc.start()
        out = _decode_batch(gw, "metrics", body, None, "application/json", bounds)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert out.accepted == accepted and out.accepted + out.rejected == 10_000
        assert peak < 6 * len(body) + 8 * 2**20, (len(body), peak)
        assert held < 5 * len(body), (len(body), held)
