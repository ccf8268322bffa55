"""Series keys: the Kafka key of `metrics` and the key of a counter's last value in the
rule engine. Distinct label sets must never share one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from processors.rules.engine import RuleEngine
from schemas.rules import Rule, RuleSettings
from schemas.telemetry import series_key

TRICKY = ',="\\\n{}ab=\x00 '
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.\-]{0,6}", fullmatch=True)
label_values = st.text(alphabet=TRICKY, max_size=8)
label_sets = st.dictionaries(label_names, label_values, max_size=4)
metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:.\-]{0,6}", fullmatch=True)


def test_a_value_holding_a_comma_is_not_two_labels() -> None:
    assert series_key("m", {"a": "1,b=2"}) != series_key("m", {"a": "1", "b": "2"})
    assert series_key("m", {"a": "1,b=2"}) == 'm{a="1,b=2"}'
    assert series_key("m", {"a": 'say "hi"\\\n', "b": "x"}) == 'm{a="say \\"hi\\"\\\\\\n",b="x"}'


def test_ordinary_series_keep_their_key_and_so_their_partition() -> None:
    assert series_key("http_requests", {"path": "/a=b", "host": "web-1"}) == (
        "http_requests{host=web-1,path=/a=b}"
    )
    assert series_key("up", {}) == "up"


@settings(max_examples=500, deadline=None)
@given(metric_names, label_sets, metric_names, label_sets)
@example("m", {"a": "1,b=2"}, "m", {"a": "1", "b": "2"})
@example("m", {"a": '"'}, "m", {"a": '\\"'})
@example("m", {"a": "x}"}, "m", {"a": "x"})
def test_distinct_series_have_distinct_keys(
    n1: str, l1: dict[str, str], n2: str, l2: dict[str, str]
) -> None:
    if (n1, l1) != (n2, l2):
        assert series_key(n1, l1) != series_key(n2, l2)
    else:
        assert series_key(n1, l1) == series_key(n2, dict(reversed(l2.items())))


def test_two_counters_whose_labels_once_shared_a_key_keep_their_own_increase() -> None:
    rule = Rule.model_validate({
        "name": "reqs", "signal": {"kind": "metric", "metric": "reqs_total", "counter": True},
        "aggregation": "rate", "window": {"size": "1m"}, "group_by": [],
        "condition": {"op": ">", "threshold": 1.5},
    })  # fmt: skip
    e = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
    pair: list[dict[str, Any]] = [{"a": "1\x00b=2"}, {"a": "1", "b": "2"}]
    for t in range(0, 130, 10):  # each counts 1/s: 2/s together
        for base, labels in zip((1000, 0), pair, strict=True):
            e.process_metric("reqs_total", labels, float(base + t), 1_000_000.0 + t)
    firing = [a for a in e.advance() if a.status == "firing"]
    assert firing and firing[0].value is not None and firing[0].value > 1.5
