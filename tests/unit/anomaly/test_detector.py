"""Conformance of the anomaly detector and its behaviour on synthetic series."""

from __future__ import annotations

import gc
import math
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import AnomalySeries
from schemas.anomaly import AnomalySpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SPECS = [
    AnomalySpec(season="daily"),
    AnomalySpec(season="none"),
    AnomalySpec(season="weekly"),
    AnomalySpec(detector="holt_winters", season="daily"),
    AnomalySpec(detector="holt_winters", season="none"),
    AnomalySpec(detector="holt_winters", season="weekly"),
]


def run(
    values: list[float], spec: AnomalySpec | None = None, step_min: int = 5
) -> tuple[list[float], list[tuple[int, str]]]:
    d = AnomalySeries(spec or AnomalySpec())
    scores, transitions = [], []
    for i, v in enumerate(values):
        verdict = d.update(v, T0 + timedelta(minutes=step_min * i))
        scores.append(verdict.score)
        if verdict.transition:
            transitions.append((i, verdict.transition))
    return scores, transitions


def noisy(n: int, seed: int = 1, level: float = 100.0, noise: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, noise) for _ in range(n)]


@pytest.mark.parametrize("spec", SPECS)
def test_scores_are_in_unit_interval_and_deterministic(spec: AnomalySpec) -> None:
    values = noisy(600) + [500.0] + noisy(200, seed=2) + [0.0] * 50 + [1e12, -1e12]
    a, _ = run(values, spec)
    b, _ = run(values, spec)
    assert a == b
    assert all(0.0 <= s <= 1.0 and not math.isnan(s) for s in a)


@pytest.mark.parametrize("spec", SPECS)
def test_no_look_ahead(spec: AnomalySpec) -> None:
    base = noisy(500)
    a, _ = run([*base, *noisy(100, seed=7)], spec)
    b, _ = run([*base, *[900.0] * 100], spec)
    assert a[:500] == b[:500], "a point's score cannot depend on later points"


@pytest.mark.parametrize("spec", SPECS)
def test_state_round_trips_and_scores_identically(spec: AnomalySpec) -> None:
    values = noisy(700)
    values[650] = 300.0
    d = AnomalySeries(spec)
    for i, v in enumerate(values[:400]):
        d.update(v, T0 + timedelta(minutes=5 * i))
    restored = AnomalySeries.from_bytes(spec, d.to_bytes())
    for i, v in enumerate(values[400:], start=400):
        at = T0 + timedelta(minutes=5 * i)
        assert restored.update(v, at) == d.update(v, at)
    assert len(d.to_bytes()) < 16 * 1024
    assert d.memory_bytes() < 16 * 1024


def test_warm_up_never_fires() -> None:
    values = [0.0] * 10 + [1000.0, -1000.0] * 60  # wild from the start
    scores, transitions = run(values, AnomalySpec(warm_up=150))
    assert max(scores[:150]) == 0.0
    assert transitions == []


def test_a_spike_fires_once_and_resolves() -> None:
    values = noisy(800)
    values[600:603] = [160.0, 170.0, 165.0]
    scores, transitions = run(values)
    assert max(scores[600:605]) >= 0.3
    assert max(scores[200:590]) < 0.3, "quiet noise stays quiet"
    assert [t for _, t in transitions] == ["firing", "resolved"]
    assert 600 <= transitions[0][0] <= 604


def test_a_level_shift_is_reported_then_learned_as_the_new_normal() -> None:
    values = noisy(600) + noisy(900, seed=3, level=140.0)
    scores, transitions = run(values)
    assert max(scores[600:610]) >= 0.3
    assert [t for _, t in transitions] == ["firing", "resolved"], "one episode, not forever"
    assert max(scores[1000:]) < 0.3


def test_a_flat_start_then_a_change_is_seen_but_not_every_wiggle() -> None:
    values = [0.0] * 400 + [0.0, 0.0, 5.0] + [0.0] * 200
    scores, _ = run(values)
    assert max(scores[400:405]) >= 0.3
    assert all(s == 0 or s < 0.3 for s in scores[200:400])


def test_a_slow_drift_does_not_page_but_a_seasonal_break_does() -> None:
    # 5-minute samples with a daily wave; on day 5 the afternoon peak does not come
    per_day = 288
    values = [
        100
        + 50 * math.sin(2 * math.pi * (i % per_day) / per_day)
        + 0.02 * i
        + random.Random(i).gauss(0, 2)
        for i in range(per_day * 6)
    ]
    break_at = per_day * 5 + 60
    for i in range(break_at, break_at + 30):
        values[i] = 5.0 + random.Random(i).gauss(0, 2)  # traffic collapses
    _, transitions = run(values, AnomalySpec(season="daily"))
    fired = [i for i, t in transitions if t == "firing"]
    assert any(break_at <= i < break_at + 30 for i in fired), "the missing peak is caught"
    assert not [i for i in fired if per_day * 2 <= i < break_at], "the drift alone is quiet"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.detector}-{s.season}")
def test_an_all_zero_start_neither_crashes_nor_fires_on_zeros(spec: AnomalySpec) -> None:
    values = [0.0] * 500 + [50.0] * 3 + [0.0] * 100
    scores, transitions = run(values, spec)
    assert max(scores[:500]) < 0.05, "a perfectly predictable series is not surprising"
    assert max(scores[500:503]) >= spec.threshold
    assert transitions and 500 <= transitions[0][0] <= 503


@pytest.mark.parametrize("season", ["weekly", "daily", "none"])
@pytest.mark.parametrize("step_min", [1, 5, 60, 23 * 60, 24 * 60, 0])
def test_a_checkpoint_anywhere_in_an_hour_continues_exactly(season: str, step_min: int) -> None:
    # the detector keeps its latest season slot as plain floats between points of the same
    # hour: a checkpoint taken inside an hour, on its edge, or after points that went back
    # in time or skipped to the same hour of another day must continue bit for bit
    spec = AnomalySpec(season=season)
    rng = random.Random(step_min)
    if step_min:
        ats = [T0 + timedelta(minutes=step_min * i) for i in range(500)]
    else:  # irregular: gaps of 0-3 hours, some of them backwards
        ats, at = [], T0
        for _ in range(500):
            at += timedelta(minutes=rng.randrange(-30, 180))
            ats.append(at)
    values = [100 + rng.gauss(0, 2) + (40 if i % 97 == 0 else 0) for i in range(500)]
    whole = AnomalySeries(spec)
    expected = [whole.update(v, at) for v, at in zip(values, ats, strict=True)]
    for cut in (150, 151, 163, 300, 437):
        d = AnomalySeries(spec)
        for v, at in zip(values[:cut], ats[:cut], strict=True):
            d.update(v, at)
        d.to_bytes()  # a checkpoint of a live series changes nothing in it either
        restored = AnomalySeries.from_bytes(spec, d.to_bytes())
        got = [restored.update(v, at) for v, at in zip(values[cut:], ats[cut:], strict=True)]
        assert got == expected[cut:], f"checkpoint after point {cut}"
        assert [d.update(v, at) for v, at in zip(values[cut:], ats[cut:], strict=True)] == got


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.detector}-{s.season}")
def test_a_restored_series_does_not_warm_up_again(spec: AnomalySpec) -> None:
    d = AnomalySeries(spec)
    for i, v in enumerate(noisy(400)):
        d.update(v, T0 + timedelta(minutes=5 * i))
    restored = AnomalySeries.from_bytes(spec, d.to_bytes())
    verdict = restored.update(400.0, T0 + timedelta(minutes=5 * 400))
    assert verdict.score >= spec.threshold
    assert verdict.expected is not None and abs(verdict.expected - 100) < 10


def test_non_finite_samples_are_ignored_not_learned() -> None:
    d = AnomalySeries(AnomalySpec())
    for i, v in enumerate(noisy(300)):
        d.update(v, T0 + timedelta(minutes=5 * i))
    before = d.to_bytes()
    verdict = d.update(float("nan"), T0 + timedelta(minutes=5 * 300))
    assert verdict.score == 0.0 and verdict.transition is None
    assert d.to_bytes() == before


def test_a_weekly_season_scores_its_first_week_as_a_daily_one() -> None:
    # every hour of the week is new during the first week and starts from the same hour
    # of day, not from whatever slot is best known: a week of history is needed before
    # weekly differences can be learned, and until then the forecast is the daily one
    per_day = 288
    values = [
        100 + 50 * math.sin(2 * math.pi * (i % per_day) / per_day) + random.Random(i).gauss(0, 2)
        for i in range(per_day * 7)
    ]
    weekly, _ = run(values, AnomalySpec(season="weekly"))
    daily, _ = run(values, AnomalySpec(season="daily"))
    assert weekly == daily


def test_a_weekly_season_learns_a_quiet_weekend_and_catches_a_busy_one() -> None:
    # weekdays busy, weekends quiet (T0 is a Monday); in week 7 the Saturday is busy
    # (the first weekends were surprising: it takes a few weeks to forget them)
    per_day = 288

    def level(day: int) -> float:
        return 20.0 if day % 7 >= 5 else 100.0

    values = [level(i // per_day) + random.Random(i).gauss(0, 2) for i in range(per_day * 48)]
    busy = per_day * 47 + 100  # Saturday of week 7, mid-morning
    for i in range(busy, busy + 30):
        values[i] = 100.0 + random.Random(i).gauss(0, 2)
    _, transitions = run(values, AnomalySpec(season="weekly"))
    fired = [i for i, t in transitions if t == "firing"]
    assert any(busy <= i < busy + 30 for i in fired), "the busy Saturday is caught"
    assert not [i for i in fired if per_day * 40 <= i < busy], "weekend 6 and its Monday are normal"


def test_holt_winters_keeps_at_most_a_288_point_season_within_16_kib() -> None:
    # weekly on 30-minute samples would be a 336-point season (over the budget in river's
    # deques): it falls back to the daily one
    spec = AnomalySpec(detector="holt_winters", season="weekly")
    d = AnomalySeries(spec)
    for i, v in enumerate(noisy(48 * 14)):
        d.update(v, T0 + timedelta(minutes=30 * i))
    assert d.memory_bytes() < 16 * 1024


def test_a_level_shift_in_a_weekly_season_is_one_episode_not_one_per_hour_of_the_week() -> None:
    # after the shift every hour of the week still holds the old level until its turn
    # comes round again (up to a week later); that must not page again and again
    per_day = 288
    shift = per_day * 10 + 37
    values = [
        100
        + 50 * math.sin(2 * math.pi * (i % per_day) / per_day)
        + (40.0 if i >= shift else 0.0)
        + random.Random(i).gauss(0, 2)
        for i in range(per_day * 24)
    ]
    scores, transitions = run(values, AnomalySpec(season="weekly"))
    assert [t for _, t in transitions] == ["firing", "resolved"]
    assert shift <= transitions[0][0] <= shift + 5
    assert max(scores[shift + per_day :]) < 0.3


@pytest.mark.parametrize(
    "spec",
    [AnomalySpec(season="weekly"), AnomalySpec(detector="holt_winters", season="daily")],
    ids=lambda s: f"{s.detector}-{s.season}",
)
def test_a_series_really_takes_under_16_kib_and_reports_about_what_it_takes(
    spec: AnomalySpec,
) -> None:
    # measured, not estimated: holt_winters' 288-point season sits ~30 B under the budget
    values = noisy(700)
    tracemalloc.start()
    try:
        # a full collection also empties the free lists, whose objects tracemalloc counts
        gc.collect()
        before = tracemalloc.take_snapshot()
        series = [AnomalySeries(spec) for _ in range(20)]
        for d in series:
            for i, v in enumerate(values):
                d.update(v, T0 + timedelta(minutes=5 * i))
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traced = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(series)
    assert traced < 16 * 1024
    assert abs(series[0].memory_bytes() - traced) < 0.1 * traced
