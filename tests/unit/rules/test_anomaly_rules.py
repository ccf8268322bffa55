"""Anomaly rules in the rule engine: counters, and groups that hold several series."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from processors.rules.engine import RuleEngine
from schemas import Alert
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
STEP = 300.0
DAY = 288
SETTINGS = RuleSettings(allowed_lateness=timedelta(seconds=30))


def anomaly_rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "rps",
        "signal": {"kind": "metric", "metric": "rps"},
        "group_by": ["service"],
        "anomaly": {},
    }
    base.update(kw)
    return Rule.model_validate(base)


def firing_rows(alerts: list[Alert]) -> list[int]:
    return [round((a.starts_at.timestamp() - T0) / STEP) for a in alerts if a.status == "firing"]


@pytest.mark.parametrize("route", [True, False], ids=["record keys", "no record keys"])
def test_an_anomaly_rule_on_a_counter_scores_its_rate(route: bool) -> None:
    # a request counter: a restart, a missed scrape and a late one are no anomaly of the
    # rate it counts; the rate halving is
    r = anomaly_rule(signal={"kind": "metric", "metric": "requests_total", "counter": True})
    e = RuleEngine([r], SETTINGS)
    rng = random.Random(3)
    total, before, alerts = 0.0, T0, []
    drop = 8 * DAY
    for i in range(9 * DAY):
        t = T0 + i * STEP + (40.0 if i == 5 * DAY else 0.0)  # one scrape 40 s late
        per_second = (10.0 if i < drop else 5.0) * rng.uniform(0.95, 1.05)
        counted = per_second * (t - before)
        total = counted if i == 6 * DAY else total + counted  # a restart
        before = t
        if i == 3 * DAY + 50:
            continue  # a missed scrape: the next increase spans ten minutes
        key = b"requests_total{service=api}" if route else None
        e.process_metric("requests_total", {"service": "api"}, total, t, route=key)
        alerts += e.advance()
    assert firing_rows(alerts) and min(firing_rows(alerts)) >= drop
    assert firing_rows(alerts)[0] - drop <= 2
    first = next(a for a in alerts if a.status == "firing")
    assert first.value == pytest.approx(5.0, rel=0.1)  # a rate per second, not an increase


def _two_instances(
    rule: Rule, outage: bool = True, counter: bool = False
) -> tuple[RuleEngine, list[Alert]]:
    """Service api served by two instances of very different traffic (requests per
    second, or their request counters); on day 10 the small one stops serving for three
    hours."""
    e = RuleEngine([rule], SETTINGS)
    rng = random.Random(1)
    totals = {"a": 0.0, "b": 0.0}
    alerts: list[Alert] = []
    for i in range(11 * DAY):
        for instance, level, lag in (("a", 100.0, 0.0), ("b", 1000.0, 7.0)):
            v = level + rng.gauss(0, level * 0.03)
            if outage and instance == "a" and 10 * DAY <= i < 10 * DAY + 36:
                v = 0.0
            if counter:
                totals[instance] += v * STEP
                v = totals[instance]
            labels = {"service": "api", "instance": instance}
            name = "requests_total" if counter else "rps"
            e.process_metric(name, labels, v, T0 + i * STEP + lag, route=instance.encode())
        alerts += e.advance()
    return e, alerts


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("gauge", {"aggregation": "sum", "window": {"size": "5m"}}),
        (
            "counter",
            {
                "signal": {"kind": "metric", "metric": "requests_total", "counter": True},
                "aggregation": "rate",
                "window": {"size": "5m"},
            },
        ),
    ],
)
def test_a_group_of_several_series_is_scored_per_window_of_its_aggregate(
    kind: str, extra: dict[str, Any]
) -> None:
    r = anomaly_rule(**extra)
    _, alerts = _two_instances(r, counter=kind == "counter")
    rows = firing_rows(alerts)
    assert rows and 10 * DAY <= rows[0] <= 10 * DAY + 3
    assert all(row >= 10 * DAY for row in rows)
    first = next(a for a in alerts if a.status == "firing")
    assert first.value == pytest.approx(1000.0, rel=0.15)  # the service's total: b alone
    _, quiet = _two_instances(r, outage=False, counter=kind == "counter")
    assert firing_rows(quiet) == []


def test_an_anomaly_rule_that_interleaves_several_series_says_so() -> None:
    # without a window the detector would score a's and b's samples as one series and
    # see nothing: the engine names the rule so the worker can report it
    e, _ = _two_instances(anomaly_rule())
    assert e.anomaly_mixed_groups() == {"rps": 1}
    one_each, _ = _two_instances(anomaly_rule(group_by=["service", "instance"]), outage=False)
    assert one_each.anomaly_mixed_groups() == {}


def test_a_windowed_anomaly_rule_resumes_mid_window_from_its_checkpoint() -> None:
    r = anomaly_rule(aggregation="avg", window={"size": "10m"})
    whole = RuleEngine([r], SETTINGS)
    halves = RuleEngine([r], SETTINGS)
    rng = random.Random(5)
    expected: list[Alert] = []
    got: list[Alert] = []
    for i in range(4 * DAY):
        v = 50.0 + rng.gauss(0, 2) + (40.0 if i >= 3 * DAY + 100 else 0.0)
        for engine, out in ((whole, expected), (halves, got)):
            engine.process_metric("rps", {"service": "api"}, v, T0 + i * STEP)
            out += engine.advance()
        if i == 3 * DAY + 1:  # a window holds one of its two samples
            restored = RuleEngine([r], SETTINGS)
            restored.load(halves.dump())
            halves = restored
    assert firing_rows(expected) and firing_rows(got) == firing_rows(expected)
    assert [a.event_id for a in got] == [a.event_id for a in expected]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"aggregation": "sum"}, "window"),
        ({"aggregation": "absent", "window": {"size": "1m"}}, "aggregation"),
        ({"early": True}, "early"),
        ({"absent_for": "5m"}, "absent_for"),
        ({"aggregation": "rate", "window": {"size": "1m"}}, "signal.counter"),
    ],
)
def test_an_anomaly_rule_that_cannot_work_is_refused_naming_the_field(
    extra: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        anomaly_rule(**extra)
