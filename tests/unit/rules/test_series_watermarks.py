"""Per-series watermarks: a window is decided as soon as every live series has moved
past its end, not `allowed_lateness` after the newest sample."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from processors.rules.engine import LATE, RuleEngine
from schemas import Alert
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SERIES = RuleSettings(allowed_lateness=timedelta(seconds=30))
PARTITION = RuleSettings(allowed_lateness=timedelta(seconds=30), watermark="partition")


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "cpu_max",
        "signal": {"kind": "metric", "metric": "cpu"},
        "aggregation": "max",
        "window": {"size": "10s"},
        "condition": {"op": ">", "threshold": 90},
        "group_by": ["host"],
    }
    base.update(kw)
    return Rule.model_validate(base)


def _scrape(e: RuleEngine, t: float, values: dict[str, float]) -> list[Alert]:
    """One scrape of every host at T0 + t, then the advance a batch ends with."""
    for host, v in values.items():
        assert e.process_metric("cpu", {"host": host}, v, T0 + t) is None
    return e.advance()


def _first_decision(settings: RuleSettings, silent_after: float | None = None) -> float:
    """Seconds of event time from h1's crossing sample (at 12 s) to its firing, two
    hosts scraped every 5 s (h2 stops after `silent_after`)."""
    e = RuleEngine([_rule()], settings)
    for t in range(0, 200, 5):
        hosts = {"h1": 95.0 if t >= 12 else 10.0, "h2": 10.0}
        if silent_after is not None and t > silent_after:
            del hosts["h2"]
        out = _scrape(e, float(t), hosts)
        if out:
            assert [(a.status, a.labels["host"]) for a in out] == [("firing", "h1")]
            assert out[0].window_end == datetime.fromtimestamp(T0 + 20, UTC)
            return t - 15.0
    raise AssertionError("never fired")


def test_a_window_closes_once_every_series_has_passed_its_end() -> None:
    # the crossing sample is at 15 s, its window ends at 20 s: the scrape at 25 s shows
    # both hosts past it; the partition watermark waits 30 s more
    assert _first_decision(SERIES) == 10.0
    assert _first_decision(PARTITION) == 35.0


def test_a_silent_series_stops_holding_windows_back() -> None:
    # h2 is silent from 15 s: after twice its interval it no longer counts
    assert _first_decision(SERIES, silent_after=10.0) <= 15.0
    assert _first_decision(PARTITION, silent_after=10.0) == 35.0


def test_a_lagging_series_holds_the_window_until_it_passes_its_end() -> None:
    e = RuleEngine([_rule()], SERIES)
    for t in range(0, 30, 5):
        assert _scrape(e, float(t), {"h1": 95.0 if t >= 12 else 10.0}) == []
        # h2 reports each of its samples one scrape behind h1
        if t >= 5:
            assert e.process_metric("cpu", {"host": "h2"}, 10.0, T0 + t - 5) is None
    assert e.advance() == []  # h2 is at 20 s: [10 s, 20 s) waits for its next sample
    e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 30)
    e.process_metric("cpu", {"host": "h2"}, 10.0, T0 + 25)
    e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 35)
    assert [a.status for a in e.advance()] == ["firing"]


def test_a_series_seen_out_of_order_keeps_the_allowed_lateness() -> None:
    e = RuleEngine([_rule()], SERIES)
    for t in range(0, 60, 5):
        _scrape(e, float(t), {"h1": 10.0})
    # h1 is out of order once: from then on its samples may trail it by the lateness
    assert e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + 52) is None
    for t in range(60, 80, 5):
        assert _scrape(e, float(t), {"h1": 10.0}) == []
    assert e.process_metric("cpu", {"host": "h1"}, 99.0, T0 + 51) is None  # 24 s behind
    out: list[Alert] = []
    for t in range(80, 120, 5):
        out += _scrape(e, float(t), {"h1": 10.0})
    assert [(a.status, a.window_end) for a in out][:1] == [
        ("firing", datetime.fromtimestamp(T0 + 60, UTC))
    ]
    assert e.process_metric("cpu", {"host": "h1"}, 99.0, T0 + 50) == LATE  # 65 s behind


def test_an_in_order_series_sample_behind_the_closed_window_is_late() -> None:
    # the price of deciding early: a series trusted to be in order that then sends a
    # sample for a window already decided has it refused as late (and counted)
    e = RuleEngine([_rule()], SERIES)
    for t in range(0, 60, 5):
        _scrape(e, float(t), {"h1": 10.0, "h2": 10.0})
    assert e.process_metric("cpu", {"host": "h1"}, 99.0, T0 + 41) == LATE
    p = RuleEngine([_rule()], PARTITION)
    for t in range(0, 60, 5):
        _scrape(p, float(t), {"h1": 10.0, "h2": 10.0})
    assert p.process_metric("cpu", {"host": "h1"}, 99.0, T0 + 41) is None


def test_the_clocks_survive_a_checkpoint() -> None:
    e = RuleEngine([_rule()], SERIES)
    for t in range(0, 20, 5):
        _scrape(e, float(t), {"h1": 95.0 if t >= 12 else 10.0, "h2": 10.0})
    restored = RuleEngine([_rule()], SERIES)
    restored.load(e.dump())
    assert restored.close_wm == e.close_wm
    assert [a.status for a in _scrape(restored, 20.0, {"h1": 10.0, "h2": 10.0})] == []
    assert [a.status for a in _scrape(restored, 25.0, {"h1": 10.0, "h2": 10.0})] == ["firing"]


def test_a_series_that_trails_the_others_is_waited_for_not_dropped() -> None:
    # h2 stalls after its first scrape, then its samples keep arriving 15 s behind h1's
    # (a source that sends late): by the age of its newest sample it would look idle
    # after 10 s, the windows would close past it and each of its samples be refused
    e = RuleEngine([_rule()], SERIES)
    assert _scrape(e, 0.0, {"h1": 10.0, "h2": 10.0}) == []
    out: list[Alert] = []
    for t in range(5, 200, 5):
        assert e.process_metric("cpu", {"host": "h1"}, 10.0, T0 + t) is None
        if t >= 20:
            assert e.process_metric("cpu", {"host": "h2"}, 99.0, T0 + t - 15) is None
        out += e.advance()
    assert [(a.status, a.labels["host"]) for a in out] == [("firing", "h2")]
    assert out[0].window_end == datetime.fromtimestamp(T0 + 10, UTC)
