"""`early: true`: a window whose value is already sure to cross fires at the sample that
makes it so, not when the window ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.rules.engine import RuleEngine
from schemas import encode
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SETTINGS = RuleSettings(allowed_lateness=timedelta(seconds=30))


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "cpu_max",
        "signal": {"kind": "metric", "metric": "cpu"},
        "aggregation": "max",
        "window": {"size": "1m"},
        "condition": {"op": ">", "threshold": 90},
        "group_by": ["host"],
        "early": True,
    }
    base.update(kw)
    return Rule.model_validate(base)


def test_a_max_above_the_threshold_fires_at_the_crossing_sample() -> None:
    e = RuleEngine([_rule(), _rule(name="cpu_max_late", early=False)], SETTINGS)
    e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 5)
    e.process_metric("cpu", {"host": "h1"}, 95.0, T0 + 12)
    out = e.advance()
    assert [(a.rule, a.status, a.early) for a in out] == [("cpu_max", "firing", True)]
    assert out[0].produced_at == datetime.fromtimestamp(T0 + 12, UTC)
    assert out[0].window_end == datetime.fromtimestamp(T0 + 60, UTC)
    # the window itself closes later: the early rule is already firing, the other fires
    for t in range(15, 70, 5):
        e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + t)
    # the clocks are re-read before a sample is folded in: the sample at 125 s shows
    # h1 alive (it sent 65 s since the last re-read), the one at 130 s that it passed 120 s
    e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 125)
    e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 130)
    later = e.advance()
    assert [(a.rule, a.status, a.early) for a in later] == [
        ("cpu_max_late", "firing", False),
        ("cpu_max", "resolved", False),
        ("cpu_max_late", "resolved", False),
    ]


def test_a_count_past_its_limit_fires_before_the_window_ends() -> None:
    e = RuleEngine(
        [_rule(name="errors", aggregation="count", condition={"op": ">=", "threshold": 3})],
        SETTINGS,
    )
    for t in (1, 2):
        e.process_metric("cpu", {"host": "h1"}, 1.0, T0 + t)
    assert e.advance() == []
    e.process_metric("cpu", {"host": "h1"}, 1.0, T0 + 3)
    assert [(a.status, a.value, a.early) for a in e.advance()] == [("firing", 3.0, True)]


def test_a_scrape_decides_early_without_waiting_for_the_rest_of_it() -> None:
    # as Prometheus sends a scrape: every series at one timestamp, so when the crossing
    # sample comes, the other series have not passed the previous window's end yet
    e = RuleEngine([_rule(window={"size": "5s"}, condition={"op": ">", "threshold": 0.5})],
                   SETTINGS)  # fmt: skip
    for scrape in range(6):
        for host in ("a", "b", "c"):
            e.process_metric("cpu", {"host": host}, 0.0, T0 + 0.5 + 5 * scrape)
        assert e.advance() == []
    crossing = T0 + 30.5
    e.process_metric("cpu", {"host": "b"}, 1.0, crossing)
    fired = e.advance()
    assert [(a.labels["host"], a.status, a.early) for a in fired] == [("b", "firing", True)]
    assert fired[0].produced_at == datetime.fromtimestamp(crossing, UTC)
    # the rest of the scrape, and the next ones: the windows before the crossing close
    # without resolving it; it resolves at the first window after it that does not cross
    out = []
    for host in ("a", "c"):
        e.process_metric("cpu", {"host": host}, 0.0, crossing)
    for scrape in range(7, 12):
        for host in ("a", "b", "c"):
            e.process_metric("cpu", {"host": host}, 0.0, T0 + 0.5 + 5 * scrape)
        out += e.advance()
    assert [(a.labels["host"], a.status) for a in out] == [("b", "resolved")]
    assert out[0].window_end == datetime.fromtimestamp(T0 + 40, UTC)


@pytest.mark.parametrize(
    "kw",
    [
        {"aggregation": "avg"},
        {"condition": {"op": "<", "threshold": 5}},
        {"condition": {"op": ">", "threshold": 90, "for": "1m"}},
    ],
)
def test_early_is_refused_where_part_of_a_window_cannot_decide_it(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="early:"):
        _rule(**kw)


def _rules() -> list[Rule]:
    return [
        _rule(window={"size": "30s"}),
        _rule(
            name="sliding",
            window={"size": "1m", "step": "20s"},
            condition={"op": ">", "threshold": 90, "keep_firing_for": "20s"},
        ),
        _rule(name="lows", aggregation="min", condition={"op": "<", "threshold": 10}),
        _rule(name="plain", early=False, condition={"op": ">", "threshold": 90, "for": "30s"}),
    ]


stream = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=100).map(float),
        st.integers(min_value=0, max_value=7),
    ),
    min_size=1,
    max_size=120,
)


def _run(
    samples: list[tuple[str, float, int]], cuts: set[int], at: int | None = None
) -> list[bytes]:
    e = RuleEngine(_rules(), SETTINGS)
    out: list[bytes] = []
    t = T0
    for i, (host, v, dt) in enumerate(samples):
        if i == at:  # as the worker does: a checkpoint after the batch's advance
            out += [encode(a) for a in e.advance()]
            restored = RuleEngine(_rules(), SETTINGS)
            restored.load(e.dump())
            e = restored
        t += dt
        e.process_metric("cpu", {"host": host}, v, t)
        if i in cuts:
            out += [encode(a) for a in e.advance()]
    return out + [encode(a) for a in e.advance() + e.flush()]


def _per_alert(out: list[bytes]) -> dict[str, list[bytes]]:
    by_fp: dict[str, list[bytes]] = {}
    for raw in out:
        by_fp.setdefault(orjson.loads(raw)["fingerprint"], []).append(raw)
    return by_fp


@settings(max_examples=60, deadline=None)
@given(stream, st.sets(st.integers(min_value=0, max_value=120)), st.integers(0, 120))
# a checkpoint taken after the clocks saw every series: restored, they must not wait
# for a new one to appear before closing the window that lets a later sample decide
@example([("a", 0.0, 0)] * 4 + [("a", 0.0, 4)] + [("a", 0.0, 7)] * 4
         + [("b", 10.0, 7), ("a", 0.0, 7), ("b", 10.0, 1), ("a", 0.0, 6), ("a", 0.0, 7),
            ("b", 0.0, 4)], set(), 14)  # fmt: skip
# a firing series whose window is due to close when a crossing sample comes: resolved
# first, then decided early by that sample, whether or not an advance came between
@example([("a", 0.0, 0)] * 26 + [("a", 0.0, 1), ("a", 0.0, 7), ("a", 0.0, 7), ("a", 0.0, 7),
          ("a", 91.0, 7), ("a", 0.0, 7), ("a", 0.0, 7), ("a", 0.0, 3), ("b", 0.0, 7),
          ("b", 0.0, 7), ("a", 0.0, 1), ("a", 91.0, 0)], {36}, 0)  # fmt: skip
def test_early_decisions_do_not_depend_on_batches_or_checkpoints(
    samples: list[tuple[str, float, int]], cuts: set[int], at: int
) -> None:
    # each alert's transitions, in order (what a consumer keyed by fingerprint sees):
    # early decisions are made per sample, so across alerts they follow the batches
    whole = _per_alert(_run(samples, set()))
    assert _per_alert(_run(samples, cuts)) == whole
    assert _per_alert(_run(samples, cuts, at)) == whole
