"""Version 2 alert bundles carry the router's validated fields; `decide` rebuilds each
Alert from them without validating again. The rebuilt alert must be the validated one:
equal, encoding to the same bytes, over alerts with every optional field set or not."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime

from schemas import Alert, decode, encode
from streams.agents.bundle import ALERT_TIMES, alert_bundle, items

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)

instants = st.one_of(
    st.just(T0), st.just(T0.replace(microsecond=123456)),
    st.just(T0.astimezone(timezone(timedelta(hours=5, minutes=30)))),
)  # fmt: skip


def _alert(status: str, summary: str, value: float | None, anomaly: float | None,
           at: datetime, window: bool, labels: dict[str, str]) -> Alert:  # fmt: skip
    """As the router holds it: validated from the bytes a producer sent."""
    sent = Alert.model_validate({
        "fingerprint": "fp-1", "status": status, "rule": " cpu ", "summary": summary,
        "severity": "critical", "labels": labels, "value": value, "threshold": 85.0,
        "annotations": {"runbook": "see wiki"}, "runbook_url": "https://r/cpu",
        "anomaly": {"score": anomaly, "expected": 40.0} if anomaly is not None else None,
        "starts_at": at, "ends_at": at if status == "resolved" else None,
        "window_start": at - timedelta(minutes=5) if window else None,
        "window_end": at if window else None,
    })  # fmt: skip
    return decode(Alert, encode(sent))


alerts = st.builds(
    _alert, st.sampled_from(["firing", "resolved", "pending"]), st.text(max_size=30),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1)), instants, st.booleans(),
    st.dictionaries(st.sampled_from(["host", "service", "env"]), st.text(max_size=10)),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(alerts, min_size=1, max_size=5))
def test_rebuilt_alerts_are_the_validated_ones(batch: list[Alert]) -> None:
    value = alert_bundle([("gid", f"root|host={i}", {"service": "s"}, a)
                          for i, a in enumerate(batch)])  # fmt: skip
    out = items(b"key", value)
    assert [(k, h["gk"], h["route"]) for k, h, _ in out] == [
        (b"gid", f"root|host={i}", {"service": "s"}) for i in range(len(batch))
    ]
    for (_, _, rebuilt), validated in zip(out, batch, strict=True):
        assert isinstance(rebuilt, Alert)
        assert rebuilt == validated
        assert encode(rebuilt) == encode(validated)


def test_the_datetime_fields_are_the_models() -> None:
    hints = typing.get_type_hints(Alert)
    times = {name for name, hint in hints.items()
             if AwareDatetime in (hint, *typing.get_args(hint))}  # fmt: skip
    assert times == set(ALERT_TIMES)


def test_version_1_bundles_are_still_read_and_validated() -> None:
    a = Alert(fingerprint="f", status="firing", rule="cpu", starts_at=T0)
    raw = encode(a)
    # as an older router wrote it: (group key, route, length) per alert, then the bytes
    head = {"t": "alerts", "items": [{"gk": "root|host=a", "route": {"service": None},
                                      "n": len(raw)}]}  # fmt: skip
    out = items(b"key", orjson.dumps(head) + b"\n" + raw)
    ((_, head, body),) = out
    assert head["gk"] == "root|host=a" and isinstance(body, bytes)
    assert decode(Alert, body) == a
