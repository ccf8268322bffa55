"""Generated streams of several series under one anomaly group: whatever their values,
interleaving, record keys and checkpoints, the group has one page at a time, which is
open exactly while one of its series' detectors fires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.rules.engine import RuleEngine
from processors.rules.state import AnomalyGroup
from schemas import Alert
from schemas.rules import Rule, RuleSettings

T0 = 1772409600.0  # a Monday, 00:00 UTC
SETTINGS = RuleSettings(allowed_lateness=timedelta(0))
INSTANCES = ["a", "b", "c", "d"]
# (instance, value, seconds after the previous sample): a few levels, so series shift,
# come back and go quiet, and several may be anomalous at once
one_sample = st.tuples(
    st.sampled_from(INSTANCES),
    st.sampled_from([0.0, 10.0, 11.0, 12.0, 500.0]),
    st.sampled_from([0, 1, 60, 300]),
)
samples = st.lists(one_sample, min_size=1, max_size=300)
specs = st.fixed_dictionaries(
    {
        "warm_up": st.integers(0, 5),
        "debounce_k": st.just(1),
        "debounce_n": st.integers(1, 3),
        "resolve_after": st.integers(1, 4),
        "season": st.sampled_from(["none", "daily"]),
    }
)


def _rule(spec: dict[str, Any], max_series: int) -> Rule:
    return Rule.model_validate({
        "name": "rps", "signal": {"kind": "metric", "metric": "rps"},
        "group_by": ["service"], "anomaly": spec, "max_series": max_series,
    })  # fmt: skip


def _run(rule: Rule, stream: list[tuple[str, float, int]], keyed: bool,
         cut: int | None) -> tuple[list[Alert], RuleEngine]:  # fmt: skip
    e = RuleEngine([rule], SETTINGS)
    out: list[Alert] = []
    t = T0
    for i, (instance, value, gap) in enumerate(stream):
        t += gap
        labels = {"service": "api", "instance": instance}
        e.process_metric("rps", labels, value, t, route=instance.encode() if keyed else None)
        e.overflows.clear()
        out += e.advance()
        if i == cut:
            restored = RuleEngine([rule], SETTINGS)
            restored.load(e.dump())
            e = restored
    return out, e


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, specs, st.integers(1, 4), st.integers(0, 300))
def test_a_group_has_one_page_open_exactly_while_a_series_fires(
    stream: list[tuple[str, float, int]], spec: dict[str, Any], max_series: int, cut: int
) -> None:
    rule = _rule(spec, max_series)
    alerts, e = _run(rule, stream, keyed=True, cut=None)
    statuses = [a.status for a in alerts]
    # one page at a time: firing and resolved alternate, starting with firing
    assert statuses == ["firing", "resolved"] * (len(statuses) // 2) + ["firing"] * (
        len(statuses) % 2
    ), statuses
    (rs,) = e.rules
    g = rs.groups.get(("api",))
    if g is not None:
        assert isinstance(g, AnomalyGroup)
        firing = g.any_firing()
        assert firing == (len(statuses) % 2 == 1)
        assert len(g.members) <= max_series and rs.detectors == len(g.members)
        assert all(a.anomaly is not None and a.anomaly.series in
                   {f"rps{{instance={i},service=api}}" for i in INSTANCES}
                   for a in alerts)  # fmt: skip
    # neither record keys nor a checkpoint anywhere change a thing
    unkeyed, _ = _run(rule, stream, keyed=False, cut=None)
    resumed, _ = _run(rule, stream, keyed=True, cut=cut)
    ids = [a.event_id for a in alerts]
    assert [a.event_id for a in unkeyed] == ids
    assert [a.event_id for a in resumed] == ids
