"""What a responder sees of an anomaly page: the value against the expected value and
its usual band, how rare it is for this series in words, and the last hours.

The path is the product's own: the rule engine fires on a traffic collapse, the
incident core pages, and the Slack message, the PagerDuty event, the console sink
and the stored incident carry the detail."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from connectors.sinks.pagerduty import pagerduty_event
from connectors.slack.render import blocks
from processors.anomaly import AnomalySeries
from processors.anomaly.recent import SLOT_S, SLOTS, Recent
from processors.anomaly.words import every_s, rarity
from processors.incidents.lifecycle import on_alert, on_tick
from processors.incidents.state import GroupState, Route, encode, from_dict
from processors.rules.engine import RuleEngine
from schemas import Alert
from schemas.anomaly import AnomalySpec
from schemas.config import load_config
from schemas.incidents import Incident
from schemas.notifications import Notification
from schemas.rules import Rule, RuleSettings
from streams.notifier.console import render

CFG = load_config([Path("examples/config")])
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def _collapse() -> list[Alert]:
    """Two days of a service's request rate every minute, then it collapses."""
    rule = Rule.model_validate({
        "name": "request_rate_anomaly",
        "signal": {"kind": "metric", "metric": "rps"},
        "group_by": ["service"],
        "labels": {"severity": "warning"},
        "anomaly": {"season": "daily"},
        "summary": "{service}: {value:.0f}/s, expected {expected:.0f}/s, {rarity}",
    })  # fmt: skip
    engine = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
    rng = random.Random(3)
    out: list[Alert] = []
    for i in range(2 * 1440 + 30):
        v = 400 + rng.gauss(0, 8) if i < 2 * 1440 else 40 + rng.gauss(0, 4)
        engine.process_metric("rps", {"service": "auth"}, v, T0 + 60 * i)
        out += engine.advance()
    return out


def test_a_page_says_what_was_expected_how_rare_this_is_and_shows_the_last_hours() -> None:
    firing = [a for a in _collapse() if a.status == "firing"]
    assert len(firing) == 1
    alert = firing[0]
    a = alert.anomaly
    assert a is not None and alert.value is not None and a.expected is not None
    assert a.lower is not None and a.upper is not None
    assert a.lower <= a.expected <= a.upper and not a.lower <= alert.value <= a.upper
    assert a.expected > 300 and alert.value < 100
    # a collapse from 400 to 40 is far rarer than anything two days of noise showed
    assert a.rarity is not None and a.rarity.startswith("rarer than once")
    assert a.rarity.endswith("for this series")
    assert alert.summary == f"auth: {alert.value:.0f}/s, expected {a.expected:.0f}/s, {a.rarity}"
    # the last four hours: the level before, the collapse at the end
    assert len(a.recent) == SLOTS and a.slot_s == SLOT_S
    assert all(v is not None and v > 300 for v in a.recent[:-4])
    assert a.recent[-1] is not None and a.recent[-1] < 100
    spark = a.sparkline()
    assert len(spark) == SLOTS and spark[-1] == "\u2581"
    assert set(spark[:-4]) <= set("\u2586\u2587\u2588")  # the usual level: the top

    st = GroupState(group_key="auth", route=Route(service="auth", policy="platform-default"))
    now = datetime.fromtimestamp(T0 + 2 * DAY + 1800, UTC)
    effects = on_alert(st, alert, now, CFG).effects
    for minute in range(1, 11):  # past the grouping wait
        effects += on_tick(st, now + timedelta(minutes=minute), CFG).effects
    pages = [e for e in effects if isinstance(e, Notification) and e.kind == "trigger"]
    assert pages and all(p.anomaly == a for p in pages)
    page = pages[0]

    text = str(blocks(page))
    assert f"{alert.value:.4g} (expected {a.expected:.4g}, usual {a.lower:.4g} to " in text
    assert a.rarity in text and spark in text and "last 4 h" in text
    assert a.rarity in render(page) and f"expected {a.expected:.4g}" in render(page)
    details = pagerduty_event(page, "key")["payload"]["custom_details"]
    assert details["rarity"] == a.rarity and details["last_hours"] == spark
    assert details["expected"] == a.expected
    # and which series of the group it is
    assert a.series == "rps{service=auth}"
    assert a.series in text and details["series"] == a.series

    # the incident keeps it for the console, and the group state keeps it across restarts
    snap = [e for e in effects if isinstance(e, Incident)][-1]
    assert snap.alerts[0].anomaly == a
    restored = from_dict(orjson.loads(encode(st)))
    assert restored.members[alert.fingerprint].anomaly == a.model_dump(mode="json")


def test_the_rarity_words_follow_how_often_such_a_point_comes() -> None:
    scores = [i / 100 for i in range(1, 100)]
    every = [every_s(s) for s in scores]
    assert every == sorted(every)
    assert rarity(0.3) == "rarer than once a day for this series"
    assert rarity(0.45) == "rarer than once a year for this series"
    assert rarity(0.1).startswith("about once in ")


def test_on_noise_points_called_rarer_than_once_a_week_come_about_weekly_or_less() -> None:
    """Thirty days of Gaussian noise every 5 minutes: the words are a promise about how
    often, so count how often noise earns each phrase."""
    s = AnomalySeries(AnomalySpec(season="daily", warm_up=0))
    rng = random.Random(11)
    weekly = daily = 0
    for i in range(30 * 288):
        v = s.update(100 + rng.gauss(0, 5), datetime.fromtimestamp(T0 + 300 * i, UTC))
        if i < 288:
            continue  # the first day learns the day's shape
        weekly += every_s(v.rarity) >= 7 * DAY
        daily += every_s(v.rarity) >= DAY
    assert weekly <= 29 / 7 + 1  # no more often than the words say
    assert daily <= 29


def test_the_last_hours_keep_spikes_and_dips_whatever_the_step() -> None:
    for step in (15.0, 60.0, 300.0):
        r = Recent()
        n = int(6 * 3600 / step)
        for i in range(n):
            t = T0 + i * step
            v = 50.0
            if i == n - int(3600 / step):
                v = 500.0  # one sample, an hour ago
            if i == n - int(7200 / step):
                v = -5.0  # one sample, two hours ago
            r.add(v, t)
        shown = r.values()
        assert len(shown) == SLOTS
        assert shown.count(500.0) == 1 and shown.count(-5.0) == 1
        assert shown.index(500.0) > shown.index(-5.0)
        assert all(v == 50.0 for v in shown if v not in (500.0, -5.0))
        # a sample older than the ring changes nothing shown; a checkpoint keeps all
        r.add(9999.0, T0)
        assert r.values() == shown
        restored, _ = Recent.load(r.dump())
        assert restored.values() == shown


def test_an_hourly_series_shows_gaps_not_invented_values() -> None:
    r = Recent()
    for i in range(12):
        r.add(float(i), T0 + 3600 * i)
    shown = r.values()
    assert [v for v in shown if v is not None] == [8.0, 9.0, 10.0, 11.0]
    assert shown.count(None) == SLOTS - 4
    assert Recent().values() == []


def test_a_checkpoint_from_before_the_last_hours_loads_and_starts_them_afresh() -> None:
    spec = AnomalySpec()
    s = AnomalySeries(spec)
    rng = random.Random(5)
    for i in range(300):
        s.update(10 + rng.gauss(0, 1), datetime.fromtimestamp(T0 + 300 * i, UTC))
    data = s.to_bytes()
    assert len(s.last_hours()) == SLOTS
    head = 2 + 1 + 4 + 4 + 16
    old = (3).to_bytes(2, "little") + data[2:head] + data[head + len(Recent().dump()) :]
    before = AnomalySeries.from_bytes(spec, old)
    assert before.last_hours() == []
    now = datetime.fromtimestamp(T0 + 300 * 300, UTC)
    assert before.update(10.5, now) == AnomalySeries.from_bytes(spec, data).update(10.5, now)
    restored = AnomalySeries.from_bytes(spec, data)
    assert restored.last_hours() == s.last_hours()
    assert AnomalySeries(AnomalySpec(detector="holt_winters")).last_hours() == []


def test_the_last_hours_continue_exactly_from_a_checkpoint_taken_inside_a_slot() -> None:
    rng = random.Random(8)
    samples = [(T0 + 15 * i, rng.gauss(50, 5)) for i in range(2000)]
    whole, first = Recent(), Recent()
    for t, v in samples:
        whole.add(v, t)
    for t, v in samples[:1013]:  # mid-slot: ten-minute slots hold forty 15-second samples
        first.add(v, t)
    second, _ = Recent.load(first.dump())
    for t, v in samples[1013:]:
        second.add(v, t)
    assert second.values() == whole.values() and second.dump() == whole.dump()
