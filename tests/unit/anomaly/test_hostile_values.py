"""Any value a sample may carry (finite, |v| <= 1e300: schemas.types.Measurement) is
scored without raising, whatever came before it: a detector that raised would take its
processor down on the record, and again on every replay of it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from processors.anomaly import AnomalySeries
from processors.rules.engine import RuleEngine
from schemas import encode
from schemas.anomaly import AnomalySpec
from schemas.rules import Rule, RuleSettings
from schemas.types import MAX_MAGNITUDE

T0 = datetime(2026, 3, 29, tzinfo=UTC)  # a DST change in Europe; event time is UTC
values = st.one_of(
    st.floats(min_value=-MAX_MAGNITUDE, max_value=MAX_MAGNITUDE),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 5e-324, 1e-300, 1e150, -1e150, MAX_MAGNITUDE, -MAX_MAGNITUDE]),
)
SPECS = [
    {"detector": detector, "season": season, "warm_up": 0, "debounce_k": 1, "debounce_n": 1,
     "resolve_after": 1}
    for detector in ("likelihood", "holt_winters") for season in ("none", "daily", "weekly")
]  # fmt: skip


def test_a_value_far_beyond_the_series_range_is_scored_not_raised() -> None:
    # after a 0, the value grid's unit is 1e-9: 1.8e299 of it overflowed to inf, and
    # the bin index of inf raised OverflowError
    d = AnomalySeries(AnomalySpec(warm_up=0))
    d.update(0.0, T0)
    verdict = d.update(1.8e299, T0 + timedelta(minutes=5))
    assert 0.0 <= verdict.score <= 1.0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SPECS),
    st.booleans(),
    st.lists(st.tuples(values, st.sampled_from([1, 15, 300, 3600])), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=200),
)
@example(SPECS[2], False, [(0.0, 300), (1.8e299, 300)], 5)
def test_any_measurement_sequence_scores_pages_and_checkpoints(
    spec: dict[str, Any], counter: bool, stream: list[tuple[float, int]], cut: int
) -> None:
    rule = Rule.model_validate({
        "name": "anomaly",
        "signal": {"kind": "metric", "metric": "m", "counter": counter},
        "anomaly": spec,
        "summary": "{value} {expected} {score} {rarity}",
    })  # fmt: skip
    e = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
    t = T0.timestamp()
    for i, (v, gap) in enumerate(stream):
        t += gap
        e.process_metric("m", {}, v, t, route=b"m")
        for alert in e.advance():
            encode(alert)  # an alert that cannot be written would stop the worker too
            assert alert.anomaly is not None and math.isfinite(alert.anomaly.score)
        if i == cut:
            restored = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
            restored.load(e.dump())
            e = restored
