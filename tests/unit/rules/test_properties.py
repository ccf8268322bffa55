"""Properties of the engine over generated streams (hypothesis): what must hold for every
input, not just the hand-built ones."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from processors.rules.engine import RuleEngine
from schemas import encode
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
GRACE = 30.0


def _rules() -> list[Rule]:
    def r(**kw: Any) -> Rule:
        base: dict[str, Any] = {
            "name": "avg",
            "signal": {"kind": "metric", "metric": "m"},
            "aggregation": "avg",
            "window": {"size": "30s"},
            "condition": {"op": ">", "threshold": 50, "for": "30s"},
            "group_by": ["host"],
        }
        base.update(kw)
        return Rule.model_validate(base)

    return [
        r(),
        r(name="max_sliding", aggregation="max", window={"size": "1m", "step": "20s"}),
        r(
            name="p90",
            aggregation="quantile",
            quantile=0.9,
            condition={
                "op": ">",
                "threshold": 70,
                "resolve_threshold": 60,
                "keep_firing_for": "20s",
            },
        ),
        r(name="absent", aggregation="absent", absent_for="1m", window=None, condition=None),
    ]


RULES = _rules()
SETTINGS = RuleSettings(allowed_lateness=timedelta(seconds=GRACE))
# the grace as the partition's: a series' first late sample is folded in too
PARTITION = RuleSettings(allowed_lateness=timedelta(seconds=GRACE), watermark="partition")

# integer-valued samples keep float sums exact whatever the order of addition
samples = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=100).map(float),
        st.integers(min_value=0, max_value=5),  # seconds since the previous sample
    ),
    min_size=1,
    max_size=150,
)


def _timed(stream: list[tuple[str, float, int]]) -> list[tuple[str, float, float]]:
    t = T0
    out = []
    for host, v, dt in stream:
        t += dt
        out.append((host, v, t))
    return out


def _run(
    stream: list[tuple[str, float, float]], cuts: set[int], settings: RuleSettings = SETTINGS
) -> list[bytes]:
    e = RuleEngine(RULES, settings)
    out: list[bytes] = []
    for i, (host, v, t) in enumerate(stream):
        e.process_metric("m", {"host": host}, v, t)
        if i in cuts:
            out += [encode(a) for a in e.advance()]
    return out + [encode(a) for a in e.advance()] + [encode(a) for a in e.flush()]


@settings(max_examples=60, deadline=None)
@given(samples, st.sets(st.integers(min_value=0, max_value=150)))
def test_batch_boundaries_never_change_the_transitions(
    stream: list[tuple[str, float, int]], cuts: set[int]
) -> None:
    timed = _timed(stream)
    assert _run(timed, cuts) == _run(timed, set())


@settings(max_examples=60, deadline=None)
@given(samples, st.integers(min_value=0, max_value=150))
# the last sample moves the watermark past the eviction grid: housekeeping closes the due
# window, whose pending only the next advance() takes out, after the checkpoint
@example(
    [("a", 0.0, 0)] * 4 + [("a", 0.0, 5)] * 2 + [("a", 51.0, 5)] + [("a", 0.0, 5)] * 3,
    10,
)
def test_a_checkpoint_anywhere_continues_exactly(
    stream: list[tuple[str, float, int]], at: int
) -> None:
    timed = _timed(stream)
    whole = _run(timed, set(range(0, 200, 7)))
    first = RuleEngine(RULES, SETTINGS)
    out: list[bytes] = []
    for i, (host, v, t) in enumerate(timed[:at]):
        first.process_metric("m", {"host": host}, v, t)
        if i % 7 == 0:
            out += [encode(a) for a in first.advance()]
    second = RuleEngine(RULES, SETTINGS)
    second.load(first.dump())
    for i, (host, v, t) in enumerate(timed[at:], start=at):
        second.process_metric("m", {"host": host}, v, t)
        if i % 7 == 0:
            out += [encode(a) for a in second.advance()]
    out += [encode(a) for a in second.advance()] + [encode(a) for a in second.flush()]
    assert out == whole


@settings(max_examples=60, deadline=None)
@given(samples, st.randoms(use_true_random=False))
def test_disorder_within_the_grace_changes_nothing(
    stream: list[tuple[str, float, int]], rnd: Any
) -> None:
    timed = _timed(stream)
    # shuffle, then keep only orders where no sample trails the max seen by the grace or
    # more: those must all be folded in as if they had arrived in order
    shuffled = sorted(timed, key=lambda s: s[2] + rnd.uniform(0, GRACE - 1))
    seen = float("-inf")
    for _, _, t in shuffled:
        assert t >= seen - GRACE
        seen = max(seen, t)
    in_order = sorted(timed, key=lambda s: s[2])
    # `max`/`avg`/quantile of the same set do not depend on order; compare their output
    assert _run(shuffled, set(), PARTITION) == _run(in_order, set(), PARTITION)


@settings(max_examples=80, deadline=None)
@given(samples)
def test_each_alert_moves_through_legal_states_only(stream: list[tuple[str, float, int]]) -> None:
    by_fp: dict[str, list[str]] = defaultdict(list)
    e = RuleEngine(RULES, SETTINGS)
    for i, (host, v, t) in enumerate(_timed(stream)):
        e.process_metric("m", {"host": host}, v, t)
        if i % 5 == 0:
            for a in e.advance():
                by_fp[a.fingerprint].append(a.status)
    for a in e.advance() + e.flush():
        by_fp[a.fingerprint].append(a.status)
    legal = {
        None: {"pending", "firing"},
        "pending": {"firing", "resolved"},
        "firing": {"resolved"},
        "resolved": {"pending", "firing"},
    }
    for fp, statuses in by_fp.items():
        prev = None
        for s in statuses:
            assert s in legal[prev], f"{fp}: {statuses}"
            prev = s


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=80))
def test_a_counter_rate_is_never_negative_whatever_the_resets(values: list[int]) -> None:
    r = Rule.model_validate(
        {
            "name": "rate",
            "signal": {"kind": "metric", "metric": "c", "counter": True},
            "aggregation": "rate",
            "window": {"size": "1m"},
            "condition": {"op": "<", "threshold": 0},
        }
    )
    e = RuleEngine([r], RuleSettings(allowed_lateness=timedelta(0)))
    out = []
    for i, v in enumerate(values):
        e.process_metric("c", {}, float(v), T0 + 10 * i)
        out += e.advance()
    out += e.flush()
    assert out == [], "a rate below zero would mean a reset was taken for a decrease"


def test_a_sample_older_than_the_series_first_one_still_opens_its_windows() -> None:
    # found by the disorder property: the series' first sample is at t=20; the 51 at
    # t=17 arrives later but within the grace, so the window ending at 00:00:20 holds it
    stream = [20.0, 0.0, 3.0, 0.0, 13.0, 8.0, 17.0]
    values = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 51.0]
    shuffled = [("a", v, T0 + t) for v, t in zip(values, stream, strict=True)]
    in_order = sorted(shuffled, key=lambda s: s[2])
    assert _run(shuffled, set()) == _run(in_order, set())
    first = orjson.loads(_run(shuffled, set())[0])
    assert (first["rule"], first["status"], first["window_end"]) == (
        "max_sliding",
        "pending",
        "2026-01-01T00:00:20Z",
    )
