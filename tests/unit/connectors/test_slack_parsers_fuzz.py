"""Whatever Slack (or anyone posing as Slack) sends, the signature check and the slash
command parser answer with their own error, never an exception that becomes a 500."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.slack.actions import MAX_SNOOZE, ActionError, Query, from_slash
from connectors.slack.signature import SignatureError, SignatureVerifier
from schemas import Command

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = 1_767_225_600
SECRET = "s3cret"


def test_a_timestamp_of_four_hundred_nines_is_refused_not_overflowed() -> None:
    v = SignatureVerifier(SECRET)
    stamp = "9" * 400
    with pytest.raises(SignatureError, match="Unix seconds"):
        v.verify(stamp, v.sign(stamp, b"x"), b"x", T)


@pytest.mark.parametrize("stamp", ["-1", " 1767225600", "1_767_225_600", "١٧٦٧٢٢٥٦٠٠", "1e9", ""])
def test_timestamps_that_are_not_plain_unix_seconds_are_refused(stamp: str) -> None:
    v = SignatureVerifier(SECRET)
    with pytest.raises(SignatureError):
        v.verify(stamp, v.sign(stamp, b"x"), b"x", T)


def test_a_correct_signature_still_passes_once() -> None:
    v = SignatureVerifier(SECRET)
    v.verify(str(T), v.sign(str(T), b"body"), b"body", T + 1.5)
    with pytest.raises(SignatureError, match="replayed"):
        v.verify(str(T), v.sign(str(T), b"body"), b"body", T + 1.5)


@settings(max_examples=400, deadline=None)
@given(
    stamp=st.one_of(st.text(max_size=500), st.integers().map(str), st.none()),
    signature=st.one_of(st.text(max_size=200), st.none()),
    body=st.binary(max_size=200),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_any_headers_give_a_signature_error_never_another_exception(
    stamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    with pytest.raises(SignatureError):
        SignatureVerifier(SECRET).verify(stamp, signature, body, now)


@settings(max_examples=200, deadline=None)
@given(stamp=st.text(max_size=500), body=st.binary(max_size=200))
def test_a_correctly_signed_request_with_any_timestamp_never_raises_anything_else(
    stamp: str, body: bytes
) -> None:
    v = SignatureVerifier(SECRET)
    try:
        signature = v.sign(stamp, body)
    except UnicodeEncodeError:  # a header never carries lone surrogates
        return
    with contextlib.suppress(SignatureError):
        v.verify(stamp, signature, body, T)


def test_a_signed_snooze_of_a_hundred_billion_days_is_a_usage_error_naming_the_maximum() -> None:
    with pytest.raises(ActionError, match="maximum of 30d"):
        from_slash("snooze 99999999999d inc-1", "U1", NOW)
    with pytest.raises(ActionError, match="maximum of 30d"):
        from_slash("snooze " + "9" * 400 + "s inc-1", "U1", NOW)
    with pytest.raises(ActionError, match="longer than 0s"):
        from_slash("snooze 0s inc-1", "U1", NOW)


def test_the_maximum_snooze_is_what_a_command_accepts() -> None:
    cmd = from_slash("snooze 30d inc-1", "U1", NOW)
    assert isinstance(cmd, Command) and cmd.duration == MAX_SNOOZE
    with pytest.raises(ValueError):
        Command(
            action="snooze",
            incident_id="inc-1",
            actor="U1",
            at=NOW,
            origin="slack",
            duration=MAX_SNOOZE + timedelta(seconds=1),
        )


words = st.sampled_from(
    [
        "ack",
        "resolve",
        "escalate",
        "snooze",
        "note",
        "who",
        "list",
        "acknowledge",
        "inc-1",
        "30m",
        "99999999999d",
        "1e400s",
        "P1D",
    ]
)
slash_texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(words, st.text(max_size=30)), max_size=6).map(" ".join),
    st.tuples(st.integers(0, 10**30), st.sampled_from(["ms", "s", "m", "h", "d", "w"])).map(
        lambda t: f"snooze {t[0]}{t[1]} inc-1"
    ),
)


@settings(max_examples=600, deadline=None)
@given(text=slash_texts, actor=st.text(max_size=20))
def test_any_slash_text_is_a_command_a_query_or_a_usage_error(text: str, actor: str) -> None:
    try:
        parsed = from_slash(text, actor, NOW)
    except ActionError as exc:
        message = str(exc)  # shown to the user as it is
        assert message.strip(), "a usage error says something"
        return
    assert isinstance(parsed, Command | Query)
    if isinstance(parsed, Command) and parsed.action == "snooze":
        assert parsed.duration is not None and timedelta(0) < parsed.duration <= MAX_SNOOZE
