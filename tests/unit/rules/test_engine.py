"""Rule semantics on hand-built streams: what an on-call engineer would see."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from processors.rules.engine import LATE, RuleEngine
from schemas import Alert, encode
from schemas.rules import Rule, RuleSettings, load_rule_files

# a DST-change day in Europe: event time is UTC epoch seconds, nothing shifts
T0 = datetime(2026, 3, 29, 0, 0, tzinfo=UTC).timestamp()
NO_GRACE = RuleSettings(allowed_lateness=timedelta(0))


def rule(**kw: Any) -> Rule:
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


def feed(
    engine: RuleEngine,
    values: list[float | None],
    step: float = 10,
    host: str = "h1",
    start: float = T0,
    name: str = "memory_percent",
) -> list[Alert]:
    out: list[Alert] = []
    for i, v in enumerate(values):
        if v is not None:
            engine.process_metric(name, {"host": host}, v, start + i * step)
        out += engine.advance()
    return out


def statuses(alerts: list[Alert]) -> list[str]:
    return [a.status for a in alerts]


def test_memory_above_90_must_hold_for_five_minutes() -> None:
    e = RuleEngine([rule()], NO_GRACE)
    out = feed(e, [95.0] * 40)  # 400 s of 95%
    assert statuses(out) == ["pending", "firing"]
    firing = out[1]
    assert firing.labels["host"] == "h1"
    assert firing.value == 95.0
    assert firing.threshold == 90
    # pending from the first closed window (t=30s) to firing 5 minutes later
    assert (firing.window_end.timestamp() - out[0].window_end.timestamp()) == 300


def test_a_dip_resets_the_for_clock() -> None:
    e = RuleEngine([rule()], NO_GRACE)
    values = [95.0] * 24 + [50.0] * 3 + [95.0] * 24  # 4 min high, dip, 4 min high
    assert "firing" not in statuses(feed(e, values))


def test_exactly_at_threshold_does_not_fire_for_greater_than() -> None:
    e = RuleEngine([rule(condition={"op": ">", "threshold": 90})], NO_GRACE)
    assert statuses(feed(e, [90.0] * 12)) == []
    e = RuleEngine([rule(condition={"op": ">=", "threshold": 90})], NO_GRACE)
    assert statuses(feed(e, [90.0] * 12)) == ["firing"]


def test_one_transition_per_state_change_not_per_evaluation() -> None:
    e = RuleEngine([rule(condition={"op": ">", "threshold": 90})], NO_GRACE)
    out = feed(e, [95.0] * 60 + [10.0] * 10)
    assert statuses(out) == ["firing", "resolved"]
    assert out[0].fingerprint == out[1].fingerprint
    assert out[1].ends_at is not None


def test_a_gap_in_data_resolves_like_prometheus() -> None:
    e = RuleEngine([rule(condition={"op": ">", "threshold": 90})], NO_GRACE)
    out = feed(e, [95.0] * 6)
    assert statuses(out) == ["firing"]
    # the host stops reporting but another series moves the watermark on
    later = feed(e, [10.0] * 12, host="h2", start=T0 + 60)
    assert statuses(later) == ["resolved"]
    assert later[0].labels["host"] == "h1"


def test_hysteresis_and_keep_firing_for_stop_flapping() -> None:
    cond = {"op": ">", "threshold": 90, "resolve_threshold": 85, "keep_firing_for": "2m"}
    e = RuleEngine([rule(condition=cond)], NO_GRACE)
    hovering = [91.0, 89.0, 91.5, 88.0, 90.5, 89.5] * 10  # around 90, never below 85
    assert statuses(feed(e, [x for x in hovering for _ in range(3)])) == ["firing"]
    e2 = RuleEngine([rule(condition={"op": ">", "threshold": 90})], NO_GRACE)
    flappy = statuses(feed(e2, [x for x in hovering for _ in range(3)]))
    assert flappy.count("firing") > 5, "without hysteresis the same input flaps"


def test_out_of_order_within_grace_is_folded_and_late_is_reported() -> None:
    e = RuleEngine(
        [rule(condition={"op": ">", "threshold": 90})], RuleSettings(allowed_lateness="20s")
    )
    e.process_metric("memory_percent", {"host": "h1"}, 80.0, T0 + 10)
    e.process_metric("memory_percent", {"host": "h1"}, 100.0, T0 + 20)
    assert e.process_metric("memory_percent", {"host": "h1"}, 100.0, T0 + 5) is None  # in grace
    e.process_metric("memory_percent", {"host": "h1"}, 50.0, T0 + 80)  # watermark -> T0+60
    out = e.advance()
    # window [0, 30) holds all three; [30, 60) is empty, a gap that resolves
    assert statuses(out) == ["firing", "resolved"]
    assert out[0].value == pytest.approx((80 + 100 + 100) / 3)
    assert e.process_metric("memory_percent", {"host": "h1"}, 99.0, T0 + 15) == LATE


def test_counter_rate_survives_a_reset() -> None:
    r = rule(
        name="reqs",
        signal={"kind": "metric", "metric": "requests_total", "counter": True},
        aggregation="rate",
        window={"size": "1m"},
        condition={"op": ">", "threshold": 50},
    )
    e = RuleEngine([r], NO_GRACE)
    # +10/s for 1 minute, then the process restarts and the counter starts over at 0
    counts = [1000 + 100 * i for i in range(7)] + [0, 100, 200, 300, 400, 500, 600]
    out = feed(e, counts, name="requests_total")
    assert statuses(out) == []  # 10/s is below 50/s; a naive diff would see -1200
    counts = [0 + 1000 * i for i in range(20)]  # 100/s
    out = feed(e, counts, name="requests_total", start=T0 + 180)
    assert statuses(out) == ["firing"]
    assert out[0].value == pytest.approx(100.0, rel=0.2)


def _log(e: RuleEngine, service: str, status: int, t: float, ms: float = 50.0) -> None:
    e.process_log({"service": service}, status, ms, t)


def test_5xx_error_rate_above_5_percent_within_a_minute() -> None:
    r = Rule.model_validate(
        {
            "name": "errors",
            "signal": {"kind": "log"},
            "aggregation": "ratio",
            "numerator": {"status_class": ["5xx"]},
            "window": {"size": "1m", "step": "15s"},
            "condition": {"op": ">", "threshold": 0.05},
            "group_by": ["service"],
            "severity": "critical",
        }
    )
    e = RuleEngine([r], NO_GRACE)
    out: list[Alert] = []
    for i in range(600):  # 10 per second for 60 s: exactly 5% errors -> quiet
        _log(e, "checkout", 503 if i % 20 == 19 else 200, T0 + i / 10)
    out += e.advance()
    assert statuses(out) == []
    for i in range(600):  # then 10%
        _log(e, "checkout", 500 if i % 10 == 0 else 200, T0 + 60 + i / 10)
    _log(e, "checkout", 200, T0 + 200)
    out += e.advance()
    assert statuses(out)[0] == "firing"
    assert 0.05 < out[0].value <= 0.1
    assert out[0].labels == {"service": "checkout", "alertname": "errors"}
    assert out[0].severity == "critical"


def test_p95_latency_uses_a_sketch_within_one_percent() -> None:
    r = Rule.model_validate(
        {
            "name": "p95",
            "signal": {"kind": "log", "value": "duration_ms"},
            "aggregation": "quantile",
            "quantile": 0.95,
            "window": {"size": "1m"},
            "condition": {"op": ">", "threshold": 300},
            "group_by": ["service"],
        }
    )
    e = RuleEngine([r], NO_GRACE)
    for i in range(1000):
        _log(e, "search", 200, T0 + i * 0.05, ms=float(i))  # uniform 0..999 ms
    _log(e, "search", 200, T0 + 120)
    out = e.advance()
    assert statuses(out) == ["firing", "resolved"]  # resolved: the gap after the burst
    assert out[0].value == pytest.approx(950, rel=0.02)


def _absent_rule() -> Rule:
    return Rule.model_validate(
        {
            "name": "absent",
            "signal": {"kind": "metric", "metric": "cpu_percent"},
            "aggregation": "absent",
            "absent_for": "5m",
            "group_by": ["host"],
        }
    )


def test_absent_fires_for_a_source_that_was_reporting_and_resolves_on_return() -> None:
    r = _absent_rule()
    e = RuleEngine([r], NO_GRACE)
    out = feed(e, [10.0] * 6, host="quiet", name="cpu_percent")
    out += feed(e, [10.0] * 40, host="busy", name="cpu_percent", start=T0 + 60)
    assert [(a.status, a.labels["host"]) for a in out] == [("firing", "quiet")]
    back = feed(e, [10.0], host="quiet", name="cpu_percent", start=T0 + 460)
    assert [(a.status, a.labels["host"]) for a in back] == [("resolved", "quiet")]


def test_absent_watches_a_counter_as_it_watches_any_series() -> None:
    # a counter signal once made the absence a counter slot with no window: the first
    # keyed sample divided by a zero step and crashed the worker
    r = Rule.model_validate({"name": "absent", "aggregation": "absent", "absent_for": "5m",
                             "signal": {"kind": "metric", "metric": "requests_total",
                                        "counter": True}, "group_by": ["host"]})  # fmt: skip
    e = RuleEngine([r], NO_GRACE)
    out: list[Alert] = []
    for i, host in enumerate(["quiet"] * 6 + ["busy"] * 40):
        e.process_metric("requests_total", {"host": host}, 100.0 * i, T0 + 10 * i,
                         route=host.encode())  # fmt: skip
        out += e.advance()
    assert [(a.status, a.labels["host"]) for a in out] == [("firing", "quiet")]


ABSENT = {"name": "gone", "signal": {"kind": "metric", "metric": "up"},
          "aggregation": "absent", "absent_for": "5m"}  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        # an absence has nothing to aggregate or compare: an absent rule with a window
        # once crashed the worker at its first window close
        ({**ABSENT, "window": {"size": "1m"}}, "window"),
        ({**ABSENT, "condition": {"op": ">", "threshold": 1}}, "condition"),
        # on a threshold rule, absent_for made its series fire "absent" with a made-up value
        ({**rule().model_dump(mode="json", by_alias=True), "absent_for": "5m"}, "absent_for"),
        # a bad regex in an absent or anomaly rule once passed, and the processor then
        # failed building its engine
        (
            {
                **ABSENT,
                "signal": {
                    "kind": "metric",
                    "metric": "up",
                    "matchers": [{"label": "host", "op": "=~", "value": "("}],
                },
            },
            "invalid regex",
        ),
        (
            {
                "name": "rps",
                "anomaly": {},
                "signal": {
                    "kind": "metric",
                    "metric": "rps",
                    "matchers": [{"label": "host", "op": "=~", "value": "("}],
                },
            },
            "invalid regex",
        ),
        # fields the aggregation does not read: ignored, the rule did something else
        ({**rule().model_dump(mode="json", by_alias=True), "quantile": 0.99}, "quantile"),
        (
            {**rule().model_dump(mode="json", by_alias=True), "numerator": {"status_min": 500}},
            "numerator",
        ),
    ],
)
def test_a_rule_with_a_field_its_kind_cannot_use_is_refused(
    doc: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        Rule.model_validate(doc)


def test_series_cap_reports_overflow_instead_of_growing() -> None:
    e = RuleEngine([rule(max_series=3)], NO_GRACE)
    for i in range(5):
        e.process_metric("memory_percent", {"host": f"h{i}"}, 50.0, T0)
    assert [labels["host"] for _, labels in e.overflows] == ["h3", "h4"]
    assert e.series_count() == 3


def test_templates_fill_labels_and_values() -> None:
    r = rule(
        condition={"op": ">", "threshold": 90},
        summary="Memory {value:.1f}% on {host}",
        runbook_url="https://rb/{host}",
    )
    e = RuleEngine([r], NO_GRACE)
    out = feed(e, [96.25] * 6)
    assert out[0].summary == "Memory 96.2% on h1"
    assert out[0].runbook_url == "https://rb/h1"


def _stream(n: int) -> list[tuple[str, float, float]]:
    import random

    rng = random.Random(3)
    out = []
    for i in range(n):
        host = f"h{i % 7}"
        out.append((host, 80 + rng.random() * 20, T0 + i * 2 + rng.random()))
    return out


def _run(e: RuleEngine, stream: list[tuple[str, float, float]], batch: int) -> list[bytes]:
    out: list[bytes] = []
    for i, (host, v, t) in enumerate(stream):
        e.process_metric("memory_percent", {"host": host}, v, t)
        if i % batch == 0:
            out += [encode(a) for a in e.advance()]
    return out + [encode(a) for a in e.advance()]


def test_two_runs_are_byte_identical_whatever_the_batching() -> None:
    rules = [rule(condition={"op": ">", "threshold": 93, "for": "1m"})]
    stream = _stream(3000)
    a = _run(RuleEngine(rules), stream, batch=1)
    b = _run(RuleEngine(rules), stream, batch=97)
    assert a
    assert a == b


def test_checkpoint_and_restore_continue_exactly() -> None:
    rules = [
        rule(condition={"op": ">", "threshold": 93, "for": "1m"}),
        rule(
            name="p", aggregation="quantile", quantile=0.9, condition={"op": ">", "threshold": 95}
        ),
    ]
    stream = _stream(3000)
    whole = _run(RuleEngine(rules), stream, batch=50)
    first = RuleEngine(rules)
    head = _run(first, stream[:1234], batch=50)
    second = RuleEngine(rules)
    second.load(first.dump())
    tail = _run(second, stream[1234:], batch=50)
    assert head + tail == whole


def test_a_transition_decided_by_a_sample_survives_a_checkpoint_before_the_advance() -> None:
    r = _absent_rule()
    e = RuleEngine([r], NO_GRACE)
    feed(e, [10.0], host="quiet", name="cpu_percent")
    # a sample of another host moves event time past quiet's absence: decided now, taken
    # out by the next advance(), which here runs on the engine restored from a checkpoint
    e.process_metric("cpu_percent", {"host": "busy"}, 10.0, T0 + 400)
    restored = RuleEngine([r], NO_GRACE)
    restored.load(e.dump())
    assert restored.dump() == e.dump()
    out = restored.advance()
    assert [(a.status, a.labels["host"]) for a in out] == [("firing", "quiet")]
    assert [encode(a) for a in out] == [encode(a) for a in e.advance()]


def test_default_pack_is_valid() -> None:
    pack = load_rule_files([Path("rules/default.yaml")])
    names = {r.name for r in pack.rules}
    assert {
        "cpu_saturation_critical",
        "memory_high",
        "http_5xx_error_rate",
        "api_latency_p95",
        "source_absent",
        "disk_iowait_high",
        "network_latency_global",
    } <= names


def test_quantile_of_negative_values_keeps_sketches_apart() -> None:
    r = rule(name="q", aggregation="quantile", quantile=0.5, condition={"op": "<", "threshold": -5})
    e = RuleEngine([r], NO_GRACE)
    for i in range(3):
        e.process_metric("memory_percent", {"host": "cold"}, -10.0 - i, T0 + i)
        e.process_metric("memory_percent", {"host": "warm"}, 10.0 + i, T0 + i)
    e.process_metric("memory_percent", {"host": "warm"}, 10.0, T0 + 40)
    out = e.advance()
    assert [(a.status, a.labels["host"]) for a in out] == [("firing", "cold")]
    assert out[0].value == pytest.approx(-11, rel=0.02)
    restored = RuleEngine([r], NO_GRACE)
    restored.load(e.dump())
    assert restored.dump() == e.dump()


@pytest.mark.parametrize("aggregation", ["quantile", "sum", "avg", "max", "rate"])
def test_the_largest_accepted_values_aggregate_without_overflow(aggregation: str) -> None:
    from schemas.types import MAX_MAGNITUDE

    counter = {"signal": {"kind": "metric", "metric": "memory_percent", "counter": True}}
    r = rule(name="big", aggregation=aggregation, quantile=0.95 if aggregation == "quantile"
             else None, condition={"op": ">", "threshold": 1.0},
             **(counter if aggregation == "rate" else {}))  # fmt: skip
    e = RuleEngine([r], NO_GRACE)
    for i in range(1000):
        value = MAX_MAGNITUDE * (i % 2) if aggregation != "rate" else MAX_MAGNITUDE * i / 1000
        e.process_metric("memory_percent", {"host": "h"}, value, T0 + i * 0.01)
    e.process_metric("memory_percent", {"host": "h"}, 0.0, T0 + 40)
    out = e.advance()
    assert [a.status for a in out] == ["firing"]
    assert math.isfinite(out[0].value or 0.0)


@pytest.mark.parametrize("n", [1, 5, 16, 17, 40])
def test_quantile_panes_answer_as_one_sketch_whatever_their_form(n: int) -> None:
    from ddsketch import DDSketch

    from processors.rules.aggregates import QUANTILE_ACCURACY, Quantile, new_mapping

    values = [float((i * 37) % 101) + 0.5 for i in range(n)]
    reference = DDSketch(QUANTILE_ACCURACY)
    for v in values:
        reference.add(v)
    mapping = new_mapping()
    whole, left, right = Quantile(0.95, mapping), Quantile(0.95, mapping), Quantile(0.95, mapping)
    for i, v in enumerate(values):
        whole.add(v, True)
        (left if i < n // 2 else right).add(v, True)
    expected = reference.get_quantile_value(0.95)
    assert whole.result() == pytest.approx(expected, rel=1e-12)
    parts = [p for p in (left, right) if p.count]
    assert Quantile.combine(parts) == pytest.approx(expected, rel=1e-12)
    restored = Quantile(0.95, mapping)
    restored.load(whole.dump())
    assert restored.result() == whole.result()
    assert restored.dump() == whole.dump()


def test_an_anomaly_alert_shows_the_score_that_made_it_fire() -> None:
    # k of n debouncing fires on the k-th high point, whose episode score is damped
    # (only a new running peak scores high): the alert must not read "score 0.18" on a
    # rule whose threshold is 0.3, as the demo's traffic-collapse page did
    r = Rule.model_validate(
        {
            "name": "rate_anomaly",
            "signal": {"kind": "metric", "metric": "rps"},
            "group_by": ["host"],
            "anomaly": {"threshold": 0.3, "season": "none", "warm_up": 150,
                        "debounce_k": 3, "debounce_n": 5},
            "summary": "{value:.0f}/s, expected {expected:.0f}/s (score {score:.2f})",
        }
    )  # fmt: skip
    e = RuleEngine([r], NO_GRACE)
    rng = random.Random(7)
    values: list[float | None] = [100 + rng.gauss(0, 2) for _ in range(400)]
    values += [20 + rng.gauss(0, 2) for _ in range(20)]  # traffic collapses
    firing = [a for a in feed(e, values, step=60, name="rps") if a.status == "firing"]
    assert len(firing) == 1
    (alert,) = firing
    assert alert.anomaly is not None and alert.anomaly.score >= 0.3
    assert f"(score {alert.anomaly.score:.2f})" in alert.summary
