"""Effects built without re-validation encode to the very bytes the validated path gave.

The core builds IncidentEvent, Incident (with AlertRef members) and Notification with
`model_construct` (processors.incidents.ledger.build). Over hypothesis-driven flows
(alerts with summaries and labels near their bounds, whitespace to strip at the edge,
every command, ticks across escalation/snooze/reopen windows) each effect is rebuilt
through full validation from its own field values and must encode identically; and
values the schema would refuse still fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from processors.incidents.ledger import Outcome, build, event, snapshot
from processors.incidents.lifecycle import on_alert, on_command, on_tick
from processors.incidents.paging import notify
from processors.incidents.state import GroupState, Route
from schemas import Alert, Command, encode
from schemas.codec import encode_fields
from schemas.config import load_config
from schemas.incidents import Incident, IncidentEvent
from schemas.notifications import Notification

CFG = load_config([Path("examples/config")])
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)

texts = st.one_of(
    st.just(""), st.just("  padded  "), st.text(max_size=40),
    st.text(min_size=8190, max_size=8192, alphabet="ab "),
)  # fmt: skip
steps = st.lists(
    st.one_of(
        st.tuples(st.just("alert"), st.sampled_from(["f1", "f2", "f3"]),
                  st.sampled_from(["firing", "resolved"]), texts),
        st.tuples(st.just("cmd"),
                  st.sampled_from(["ack", "unack", "resolve", "escalate", "snooze", "note",
                                   "assign"]),
                  st.sampled_from([" alice ", "bob"]), texts),
        st.tuples(st.just("tick"), st.just(""), st.just(""), st.just("")),
    ),
    max_size=30,
)  # fmt: skip
gaps = st.lists(st.integers(min_value=0, max_value=4000), min_size=30, max_size=30)


def _alert(fp: str, status: str, summary: str, at: datetime, i: int) -> Alert:
    return Alert.model_validate({
        "event_id": f"e{i}", "fingerprint": fp, "status": status, "rule": " cpu_high ",
        "severity": "critical" if fp != "f3" else "warning", "summary": summary,
        "labels": {"host": "web-03", "service": "search", "note": summary[:1024]},
        "value": 95.5, "threshold": 85.0,
        "anomaly": {"score": 0.25, "expected": 40.0, "lower": 31.5, "upper": 48.5,
                    "rarity": "rarer than once a day for this series",
                    "recent": [40.0, None, 95.5]} if fp == "f2" else None,
        "runbook_url": "https://runbooks/cpu" if fp == "f1" else None,
        "starts_at": at.isoformat(),
        "ends_at": at.isoformat() if status == "resolved" else None,
    })  # fmt: skip


def _command(action: str, actor: str, text: str, incident: str, at: datetime) -> Command | None:
    try:
        return Command.model_validate({
            "action": action, "incident_id": incident, "actor": actor, "at": at,
            "duration": timedelta(minutes=20) if action == "snooze" else None,
            "assignee": " carol " if action == "assign" else None, "text": text,
        })  # fmt: skip
    except ValidationError:
        return None  # refused at the edge (a note without text): never reaches the core


def _flow(seq: list[tuple[str, str, str, str]], gap: list[int]) -> list[BaseModel]:
    route = Route(service="search", team="platform", policy="platform-default")
    g = GroupState(group_key="search|web-03", route=route)
    now, effects = T0, []
    for i, ((kind, a, b, text), dt) in enumerate(zip(seq, gap, strict=False)):
        now += timedelta(seconds=dt)
        cmd = None
        if kind == "cmd" and g.incident_id:
            cmd = _command(a, b, text, g.incident_id, now)
        if kind == "alert":
            out = on_alert(g, _alert(a, b, text, now, i), now, CFG)
        elif cmd is not None:
            out = on_command(g, cmd, now, CFG)
        else:
            out = on_tick(g, now, CFG)
        effects += out.effects
    return effects


def _validated(effect: BaseModel) -> BaseModel:
    """The effect as full validation builds it from the same values (nested ones too)."""
    return type(effect).model_validate(effect.model_dump())


@settings(max_examples=200, deadline=None)
@given(steps, gaps)
def test_constructed_effects_encode_as_validated(seq: list[tuple[str, str, str, str]],
                                                 gap: list[int]) -> None:  # fmt: skip
    for effect in _flow(seq, gap):
        assert encode(effect) == encode(_validated(effect)), type(effect).__name__
        assert encode_fields(effect) == encode(effect), type(effect).__name__


def test_encoding_from_the_fields_falls_back_for_what_orjson_does_not_write() -> None:
    cmd = Command(action="snooze", incident_id="inc-a-b", actor="alice", at=T0,
                  duration=timedelta(minutes=20))  # fmt: skip
    assert encode_fields(cmd) == encode(cmd)  # a timedelta: pydantic's ISO 8601 text
    odd = T0.replace(microsecond=5).astimezone(timezone(timedelta(hours=-3)))
    g = _group()
    out = Outcome()
    event(g, out, "note", odd, "x", at_text=odd.isoformat(), n=2**63 - 1)
    assert encode_fields(out.effects[0]) == encode(out.effects[0])
    event(g, out, "note", T0, "x", n=2**64)
    with pytest.raises(TypeError):  # orjson refuses it either way
        encode(out.effects[1])
    with pytest.raises(TypeError):
        encode_fields(out.effects[1])


def test_every_effect_kind_is_covered() -> None:
    seq = [("alert", "f1", "firing", " x "), ("cmd", "note", " alice ", "hi"),
           ("cmd", "ack", "bob", ""), ("alert", "f1", "resolved", "")]  # fmt: skip
    kinds = {type(e) for e in _flow(seq, [0, 1, 2, 3])}
    assert kinds == {Incident, IncidentEvent, Notification}


def _group() -> GroupState:
    g = GroupState(group_key="k", route=Route(service="search"))
    on_alert(g, _alert("f1", "firing", "s", T0, 0), T0, CFG)
    return g


def test_a_naive_clock_still_fails_validation() -> None:
    g, naive = _group(), datetime(2026, 2, 2, 10, 0)
    with pytest.raises(ValidationError):
        event(g, Outcome(), "note", naive, "x")
    with pytest.raises(ValidationError):
        snapshot(g, CFG, naive, Outcome())
    with pytest.raises(ValidationError):
        notify(g, CFG, naive, "update", "slack", "#ops", "s", Outcome())


def test_values_past_the_bounds_still_fail_validation() -> None:
    g = _group()
    with pytest.raises(ValidationError):  # a target longer than ShortText
        notify(g, CFG, T0, "update", "slack", "#" + "x" * 1024, "s", Outcome())
    g.notified.append(("slack", "#" + "x" * 1020))  # "slack:#xxx..." is past 1024
    with pytest.raises(ValidationError):
        snapshot(g, CFG, T0, Outcome())
    with pytest.raises(ValidationError):  # more details than the ledger allows
        event(g, Outcome(), "note", T0, "x", **{f"k{i}": i for i in range(65)})


def test_build_validates_when_not_trusted() -> None:
    with pytest.raises(ValidationError):
        build(IncidentEvent, False, incident_id=" ", seq=-1, kind="note", at=T0)
