from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from schemas import (
    Alert,
    Command,
    DeadLetter,
    DecodeError,
    LogRecord,
    MetricSample,
    SilenceSpec,
    decode,
    encode,
)
from schemas.envelope import new_event_id
from schemas.export import SCHEMA_DIR, render_all
from schemas.types import MAX_LABELS

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def sample_json(**overrides: object) -> bytes:
    import orjson

    base: dict[str, object] = {
        "name": "cpu_percent",
        "value": 42.5,
        "time": "2026-01-01T12:00:00Z",
        "labels": {"host": "a"},
    }
    base.update(overrides)
    return orjson.dumps(base)


def test_metric_sample_round_trips_through_bytes() -> None:
    s = MetricSample(name="cpu_percent", value=91.5, time=T0, labels={"host": "web-1"})
    assert decode(MetricSample, encode(s)) == s


def test_encoding_is_deterministic_for_equal_events() -> None:
    a = MetricSample(
        name="m", value=1.0, time=T0, event_id="x", produced_at=T0, labels={"b": "2", "a": "1"}
    )
    b = MetricSample(
        name="m", value=1.0, time=T0, event_id="x", produced_at=T0, labels={"a": "1", "b": "2"}
    )
    assert encode(a) == encode(b)


def test_every_event_gets_a_unique_id() -> None:
    ids = {MetricSample(name="m", value=1, time=T0).event_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    new_event_id()  # the parent holds ids it has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids to the parent, then gone
        os.write(write, ",".join(new_event_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as r:
        child = set(r.read().decode().split(","))
    parent = {new_event_id() for _ in range(50)}
    assert len(child) == 50
    assert not child & parent


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_rejected_naming_the_field(bad: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode(MetricSample, sample_json(value=bad))
    assert "MetricSample.value" in str(err.value)
    assert "finite" in str(err.value)


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(DecodeError, match=r"MetricSample\.time: .*timezone"):
        decode(MetricSample, sample_json(time="2026-01-01T12:00:00"))


def test_epoch_seconds_are_accepted_as_utc() -> None:
    s = decode(MetricSample, sample_json(time=1767268800))
    assert s.time == T0


def test_too_many_labels_are_rejected() -> None:
    labels = {f"l{i}": "v" for i in range(MAX_LABELS + 1)}
    with pytest.raises(DecodeError, match="at most 64 labels"):
        decode(MetricSample, sample_json(labels=labels))


def test_overlong_label_values_and_bad_keys_are_rejected() -> None:
    with pytest.raises(DecodeError, match=r"labels\.host"):
        decode(MetricSample, sample_json(labels={"host": "x" * 2000}))
    with pytest.raises(DecodeError, match="labels"):
        decode(MetricSample, sample_json(labels={"bad key!": "x"}))


def test_unknown_fields_and_missing_fields_are_named() -> None:
    with pytest.raises(DecodeError, match=r"MetricSample\.colour: Extra inputs"):
        decode(MetricSample, sample_json(colour="red"))
    with pytest.raises(DecodeError, match=r"MetricSample\.value: Field required"):
        decode(MetricSample, b'{"name":"m","time":"2026-01-01T00:00:00Z"}')


def test_invalid_json_has_its_own_reason() -> None:
    with pytest.raises(DecodeError) as err:
        decode(MetricSample, b"{not json")
    assert err.value.reason == "invalid_json"


def test_log_record_status_bounds() -> None:
    ok = LogRecord(time=T0, http_status=503, duration_ms=12.0)
    assert decode(LogRecord, encode(ok)).http_status == 503
    with pytest.raises(DecodeError, match="http_status"):
        decode(LogRecord, b'{"time":"2026-01-01T00:00:00Z","http_status":999}')


def test_resolved_alert_needs_an_end() -> None:
    with pytest.raises(ValueError, match="ends_at"):
        Alert(fingerprint="f", status="resolved", rule="r", starts_at=T0)
    a = Alert(
        fingerprint="f",
        status="resolved",
        rule="r",
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=5),
        value=91.0,
        threshold=90.0,
    )
    assert decode(Alert, encode(a)) == a


def test_commands_require_their_arguments() -> None:
    with pytest.raises(ValueError, match="duration"):
        Command(action="snooze", incident_id="i1", actor="u", at=T0)
    with pytest.raises(ValueError, match="incident_id"):
        Command(action="ack", actor="u", at=T0)
    snooze = Command(
        action="snooze", incident_id="i1", actor="u", at=T0, duration=timedelta(minutes=30)
    )
    assert decode(Command, encode(snooze)).duration == timedelta(minutes=30)
    silence = SilenceSpec(
        matchers=[{"label": "host", "value": "a"}],
        starts_at=T0,  # type: ignore[list-item]
        ends_at=T0 + timedelta(hours=1),
        author="u",
    )
    assert Command(action="silence", actor="u", at=T0, silence=silence).incident_id is None


def test_dead_letter_keeps_arbitrary_bytes() -> None:
    raw = b"\x00\xff not json at all \xfe"
    letter = DeadLetter(
        source_topic="metrics",
        partition=1,
        offset=7,
        value=raw,
        reason="invalid_json",
        error="boom",
    )
    assert decode(DeadLetter, encode(letter)).value == raw


def test_exported_json_schemas_are_current() -> None:
    rendered = render_all()
    on_disk = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.json")}
    stale = sorted(n for n in rendered if on_disk.get(n) != rendered[n])
    extra = sorted(set(on_disk) - set(rendered))
    assert not stale and not extra, (
        f"exported JSON Schemas are stale {stale} / orphaned {extra}: run `make schemas`"
    )
