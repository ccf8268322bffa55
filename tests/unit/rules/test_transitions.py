"""What the alerts topic carries for `for:` rules: Prometheus' `startsAt`, the pending
time beside it, and no resolution for a pending that never fired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from processors.rules.engine import RuleEngine
from schemas import Alert
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
NO_GRACE = RuleSettings(allowed_lateness=timedelta(0))


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "mem",
        "signal": {"kind": "metric", "metric": "memory_percent"},
        "aggregation": "avg",
        "window": {"size": "30s"},
        "condition": {"op": ">", "threshold": 90, "for": "5m"},
        "group_by": ["host"],
    }
    base.update(kw)
    return Rule.model_validate(base)


def _feed(e: RuleEngine, values: list[float], start: float = 0.0) -> list[Alert]:
    out: list[Alert] = []
    for i, v in enumerate(values):
        assert e.process_metric("memory_percent", {"host": "h1"}, v, T0 + start + i * 10) is None
        out += e.advance()
    return out


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def test_starts_at_is_when_it_fired_and_the_pending_time_is_its_own_field() -> None:
    e = RuleEngine([_rule()], NO_GRACE)
    out = _feed(e, [95.0] * 40 + [10.0] * 6)
    assert [a.status for a in out] == ["pending", "firing", "resolved"]
    pending, firing, resolved = out
    # the first window [0 s, 30 s) holds at its end: pending from 30 s, firing 5 min on
    assert pending.starts_at == pending.pending_since == _at(30)
    assert firing.starts_at == _at(330) and firing.pending_since == _at(30)
    assert resolved.starts_at == _at(330) and resolved.pending_since == _at(30)


def test_a_for_0_rule_has_no_pending_time() -> None:
    e = RuleEngine([_rule(condition={"op": ">", "threshold": 90})], NO_GRACE)
    firing = _feed(e, [95.0] * 4)[0]
    assert (firing.status, firing.starts_at, firing.pending_since) == ("firing", _at(30), None)


def test_twenty_minutes_hovering_at_the_threshold_is_not_forty_transitions() -> None:
    # one window above, the next below, for 20 minutes: pending never lasts 5 minutes
    e = RuleEngine([_rule()], NO_GRACE)
    hovering = [([95.0] * 3 if w % 2 == 0 else [85.0] * 3) for w in range(40)]
    out = _feed(e, [v for window in hovering for v in window] + [85.0] * 3)
    assert [a.status for a in out] == ["pending"]
    # when it does fire after all, the topic goes on from the pending it already has
    out = _feed(e, [95.0] * 40, start=1230)
    assert [(a.status, a.starts_at, a.pending_since) for a in out] == [
        ("firing", _at(1560), _at(1260))
    ]
