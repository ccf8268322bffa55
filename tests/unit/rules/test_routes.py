"""The route cache (processors/rules/routes.py) changes speed, never answers: an engine
fed with route keys emits the very transitions, and holds the very state, of one fed
without them — whatever the keys (shared by several series, reused with other labels),
idle evictions, series caps, counter resets and batch boundaries. Rules that share
accumulators on routes (ShadowSlot) never share them on the slow path: the comparison
also says sharing changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from processors.rules.aggregates import Quantile, _quantile_of_values, _sketch_of, new_mapping
from processors.rules.compiled import CompiledRule
from processors.rules.engine import RuleEngine
from processors.rules.routes import ShadowSlot
from schemas import encode
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "avg",
        "signal": {"kind": "metric", "metric": "m"},
        "aggregation": "avg",
        "window": {"size": "30s"},
        "condition": {"op": ">", "threshold": 50, "for": "20s"},
        "group_by": ["host"],
    }
    base.update(kw)
    return Rule.model_validate({k: v for k, v in base.items() if v is not None})


ANOMALY = {"season": "none", "warm_up": 3, "debounce_k": 1, "debounce_n": 1, "resolve_after": 2}
RULES = [
    _rule(),
    _rule(name="max_sliding", aggregation="max", window={"size": "1m", "step": "20s"}),
    _rule(
        name="p90_zone_a",
        aggregation="quantile",
        quantile=0.9,
        signal={"kind": "metric", "metric": "m", "matchers": [{"label": "zone", "value": "a"}]},
        window={"size": "40s", "step": "20s"},
        condition={"op": ">", "threshold": 70, "resolve_threshold": 60},
        max_series=2,
    ),
    # shadows (routes.ShadowSlot): the same signal, aggregation, window and group_by as
    # an earlier rule, so they share its accumulators; with series caps on either side
    _rule(name="avg_low", condition={"op": ">", "threshold": 30, "for": "10s"}, max_series=2),
    _rule(
        name="max_sliding_high",
        aggregation="max",
        window={"size": "1m", "step": "20s"},
        condition={"op": ">", "threshold": 100},
        min_samples=2,
    ),
    _rule(
        name="min_capped", aggregation="min", window={"size": "40s", "step": "20s"}, max_series=1
    ),
    _rule(
        name="min_uncapped",
        aggregation="min",
        window={"size": "40s", "step": "20s"},
        condition={"op": "<", "threshold": 20},
    ),
    _rule(name="absent", aggregation="absent", absent_for="1m", window=None, condition=None),
    _rule(
        name="rate",
        aggregation="rate",
        signal={"kind": "metric", "metric": "c", "counter": True},
        window={"size": "30s", "step": "10s"},
        condition={"op": ">", "threshold": 1},
    ),
    _rule(
        name="errors",
        aggregation="ratio",
        signal={"kind": "log", "matchers": [{"label": "tier", "op": "!=", "value": "web"}]},
        numerator={"status_class": ["5xx"]},
        window={"size": "30s", "step": "10s"},
        condition={"op": ">", "threshold": 0.3},
        group_by=["service"],
    ),
    _rule(
        name="slow",
        aggregation="quantile",
        quantile=0.5,
        signal={"kind": "log", "value": "duration_ms", "filter": {"status_max": 499}},
        window={"size": "20s"},
        condition={"op": ">", "threshold": 100},
        group_by=["service"],
    ),
    # anomaly rules: sample by sample (a gauge, and a counter's rate) and per window (a
    # shadow of `avg`, and a counter's rate); short warm-ups so that they page
    _rule(name="anomaly", aggregation=None, window=None, condition=None, anomaly=ANOMALY),
    _rule(
        name="anomaly_counter",
        signal={"kind": "metric", "metric": "c", "counter": True},
        aggregation=None,
        window=None,
        condition=None,
        anomaly=ANOMALY,
    ),
    _rule(name="anomaly_avg", condition=None, anomaly=ANOMALY),
    _rule(
        name="anomaly_rate",
        aggregation="rate",
        signal={"kind": "metric", "metric": "c", "counter": True},
        window={"size": "20s"},
        condition=None,
        anomaly=ANOMALY,
        group_by=[],
    ),
]
SETTINGS = RuleSettings(allowed_lateness=timedelta(seconds=15))

events = st.lists(
    st.tuples(
        st.sampled_from(["m", "c", "log"]),
        st.sampled_from(["a", "b", "c"]),  # host / service
        st.sampled_from(["a", "b"]),  # zone / tier
        st.integers(min_value=0, max_value=120).map(float),  # value / duration
        st.sampled_from([0, 1, 3, 7, 20, 4000]),  # seconds since the previous event
        st.sampled_from([b"k1", b"k2", b"k3", b"k4"]),  # route key: shared across series
        st.sampled_from([200, 404, 503]),
    ),
    min_size=1,
    max_size=120,
)


def _run(stream: list[Any], cuts: set[int], keyed: bool) -> tuple[list[bytes], bytes]:
    e = RuleEngine(RULES, SETTINGS)
    out: list[bytes] = []
    t = T0
    for i, (kind, who, where, v, dt, key, status) in enumerate(stream):
        t += dt
        route = key if keyed else None
        if kind == "log":
            tier = "web" if where == "a" else "api"
            ms = None if v > 110 else v
            e.process_log({"service": who, "tier": tier}, status, ms, t, route=route)
        else:
            value = v if kind == "m" else float(int(v) // 10 * (i % 5))  # resets too
            e.process_metric(kind, {"host": who, "zone": where}, value, t, route=route)
        e.overflows.clear()
        if i in cuts:
            out += [encode(a) for a in e.advance()]
    out += [encode(a) for a in e.advance()]
    state = e.dump()
    return out + [encode(a) for a in e.flush()], state


@settings(max_examples=150, deadline=None)
@given(events, st.sets(st.integers(min_value=0, max_value=120)))
# a route replaced by other labels on its key (zone a -> b): what only the old route saw
# of a group matching zone a (its last_seen) must reach the group
@example(
    [("m", "a", "a", 0.0, 0, b"k1", 200)] * 7
    + [("m", "a", "a", 0.0, 1, b"k1", 200), ("m", "a", "b", 0.0, 0, b"k1", 200)],
    set(),
)
def test_routes_change_nothing(stream: list[Any], cuts: set[int]) -> None:
    assert _run(stream, cuts, keyed=True) == _run(stream, cuts, keyed=False)


def test_shadows_share_the_lead_accumulator_and_count_once() -> None:
    # one host, 7 s apart on one route key (panes change: the shadows share), then the
    # same group from other labels on the same key (the slow path on shared panes)
    stream: list[Any] = [("m", "a", "a", 10.0, 7, b"k1", 200)] * 10
    stream += [("m", "a", "b", 90.0, 1, b"k1", 200), ("m", "a", "a", 90.0, 1, b"k1", 200)]
    assert _run(stream, set(), keyed=True) == _run(stream, set(), keyed=False)
    e = RuleEngine(RULES, SETTINGS)
    for i in range(10):
        e.process_metric("m", {"host": "a", "zone": "a"}, 10.0, T0 + 7 * i, route=b"k1")
    shadows = [s for s in e._routes[b"k1"].slots if isinstance(s, ShadowSlot)]
    assert [s.rs.rule.rule.name for s in shadows] == [
        "avg_low",
        "max_sliding_high",
        "min_uncapped",
        "anomaly_avg",
    ]
    assert all(s.acc is s.lead.acc for s in shadows)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-5, max_value=1e7, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_quantile_shortcut_answers_what_the_sketch_answers(values: list[float], q: float) -> None:
    mapping = new_mapping()
    want = _sketch_of(mapping, values).get_quantile_value(q)
    single = Quantile(q, mapping)
    for v in values:
        single.add(v, True)
    halves = [Quantile(q, mapping), Quantile(q, mapping)]
    for i, v in enumerate(values):
        halves[i * 2 // len(values)].add(v, True)
    parts = [p for p in halves if p.count]
    assert single.result() == (None if want is None else float(want))
    assert Quantile.combine(parts) == (None if want is None else float(want))


@settings(max_examples=200, deadline=None)
@given(
    # bounded: the sketch itself overflows near the float maximum (in either path)
    st.floats(min_value=-1e300, max_value=1e300) | st.sampled_from([-0.0, 0.0, 1e-320]),
    st.booleans(),
)
def test_a_pane_started_with_first_holds_what_new_then_add_holds(value: float, hit: bool) -> None:
    # the pane-start path (CompiledRule.start_accumulator) against the general one
    for rule in RULES:
        compiled = CompiledRule(rule)
        if not compiled.n_windows:
            continue
        general = compiled.new_accumulator()
        general.add(value, hit)
        started = compiled.start_accumulator(value, hit)
        assert type(started) is type(general)
        assert orjson.dumps(started.dump()) == orjson.dumps(general.dump())
        assert started.result() == general.result()


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1e300))
def test_the_inline_sketch_key_is_the_mappings_key(value: float) -> None:
    mapping = new_mapping()
    assert _quantile_of_values(mapping, 0.5, [value]) == float(mapping.value(mapping.key(value)))
