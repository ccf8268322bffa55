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
    rule: Rule,
    outage: bool = True,
    counter: bool = False,
    route: bool = True,
    both: bool = False,
    checkpoint_at: int | None = None,
) -> tuple[RuleEngine, list[Alert]]:
    """Service api served by two instances of very different traffic (requests per
    second, or their request counters); on day 10 the small one (`both`: each) stops
    serving for three hours. `checkpoint_at`: the engine is replaced by one restored from
    its checkpoint after that row."""
    e = RuleEngine([rule], SETTINGS)
    rng = random.Random(1)
    totals = {"a": 0.0, "b": 0.0}
    alerts: list[Alert] = []
    for i in range(11 * DAY):
        for instance, level, lag in (("a", 100.0, 0.0), ("b", 1000.0, 7.0)):
            v = level + rng.gauss(0, level * 0.03)
            down = outage and (instance == "a" or both)
            if down and 10 * DAY + (12 if instance == "b" else 0) <= i < 10 * DAY + 36:
                v = 0.0
            if counter:
                totals[instance] += v * STEP
                v = totals[instance]
            labels = {"service": "api", "instance": instance}
            name = "requests_total" if counter else "rps"
            key = instance.encode() if route else None
            e.process_metric(name, labels, v, T0 + i * STEP + lag, route=key)
        alerts += e.advance()
        if i == checkpoint_at:
            restored = RuleEngine([rule], SETTINGS)
            restored.load(e.dump())
            e = restored
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


COUNTER = {"signal": {"kind": "metric", "metric": "requests_total", "counter": True}}


@pytest.mark.parametrize("kind", ["gauge", "counter"])
@pytest.mark.parametrize("route", [True, False], ids=["record keys", "no record keys"])
def test_each_series_of_a_group_is_scored_by_its_own_detector(kind: str, route: bool) -> None:
    # no window: the small instance's outage is no anomaly of the group's total, but it
    # is one of its own series, and the group pages for it
    r = anomaly_rule(**(COUNTER if kind == "counter" else {}))
    e, alerts = _two_instances(r, counter=kind == "counter", route=route)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    firing, resolved = alerts
    assert 10 * DAY <= firing_rows(alerts)[0] <= 10 * DAY + 3
    assert firing.labels == {"service": "api", "alertname": "rps"}
    assert firing.value == pytest.approx(0.0, abs=1.0)  # instance a's value
    assert firing.anomaly is not None and firing.anomaly.expected is not None
    assert firing.anomaly.expected == pytest.approx(100.0, rel=0.2)  # a's own level
    name = "requests_total" if kind == "counter" else "rps"
    assert firing.anomaly.series == f"{name}{{instance=a,service=api}}"
    assert resolved.ends_at is not None and resolved.ends_at > firing.starts_at
    assert e.anomaly_series_count() == 2
    _, quiet = _two_instances(r, outage=False, counter=kind == "counter", route=route)
    assert quiet == []


def test_a_group_pages_once_while_several_of_its_series_are_anomalous() -> None:
    # both instances stop, b an hour after a: one page, resolved once both are back
    _, alerts = _two_instances(anomaly_rule(), both=True)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[0].anomaly is not None and alerts[0].anomaly.series is not None
    assert "instance=a" in alerts[0].anomaly.series
    _, a_only = _two_instances(anomaly_rule())
    # b's outage ends with a's: the page stays open until the later of the two resolves
    assert alerts[1].ends_at is not None and a_only[1].ends_at is not None
    assert alerts[1].ends_at > a_only[1].ends_at


def test_a_group_of_several_series_resumes_from_its_checkpoint() -> None:
    r = anomaly_rule()
    _, whole = _two_instances(r)
    for at in (9 * DAY, 10 * DAY + 2, 10 * DAY + 20):  # before, as it fires, while firing
        _, halves = _two_instances(r, checkpoint_at=at)
        assert [a.event_id for a in halves] == [a.event_id for a in whole], at


def test_a_series_that_leaves_its_group_is_forgotten_unless_it_fires() -> None:
    # pods replaced under one service: each new pod's series gets a detector, and the
    # detectors of pods long gone are dropped while the service goes on
    r = anomaly_rule(anomaly={"idle_evict": "1h"})
    e = RuleEngine([r], SETTINGS)
    rng = random.Random(2)
    for i in range(3 * DAY):
        pod = f"p{i // 100}"  # a new pod every 100 rows
        labels = {"service": "api", "pod": pod}
        e.process_metric("rps", labels, 50.0 + rng.gauss(0, 1), T0 + i * STEP, route=pod.encode())
        e.advance()
        assert e.anomaly_series_count() <= 2, i  # the current pod, and the one just gone
    assert e.anomaly_series_count() >= 1


def test_a_group_of_ten_quiet_series_pages_about_as_rarely_as_one() -> None:
    # a month of noise on ten instances of a service: among ten series a rare point
    # comes ten times as often, so each member's threshold is raised to match
    pages = 0
    for seed in (0, 1):
        e = RuleEngine([anomaly_rule()], SETTINGS)
        rng = random.Random(seed)
        for i in range(30 * DAY):
            for k in range(10):
                labels = {"service": "api", "instance": f"i{k}"}
                t = T0 + i * STEP + k
                e.process_metric("rps", labels, 100 + rng.gauss(0, 3), t, route=f"i{k}".encode())
            pages += sum(1 for a in e.advance() if a.status == "firing")
    assert pages <= 1  # as one series alone does


def test_max_series_caps_the_detectors_of_a_rule_that_scores_each_series() -> None:
    # five instances under one service, room for three detectors: the last two are
    # refused (the feed dead-letters them as `cardinality`), also after a checkpoint
    e = RuleEngine([anomaly_rule(max_series=3)], SETTINGS)
    refused: set[str] = set()
    for i in range(4):
        for instance in "abcde":
            labels = {"service": "api", "instance": instance}
            e.process_metric("rps", labels, 10.0, T0 + i * STEP, route=instance.encode())
            refused |= {labels["instance"] for _, labels in e.overflows}
            e.overflows.clear()
        if i == 1:
            restored = RuleEngine([anomaly_rule(max_series=3)], SETTINGS)
            restored.load(e.dump())
            e = restored
    assert e.anomaly_series_count() == 3
    assert refused == {"d", "e"}


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
