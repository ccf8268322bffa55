"""A threshold means the same number of pages per day whatever the sampling step."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import AnomalySeries
from processors.anomaly.timescale import SamplingStep
from schemas.anomaly import AnomalySpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def high_points_per_day(step_min: int, days: int, seed: int) -> float:
    """Points of Gaussian noise rated rare enough to fire a 0.3 rule, per day after day 3."""
    rng = random.Random(seed)
    d = AnomalySeries(AnomalySpec())
    high = 0
    for i in range(days * 1440 // step_min):
        verdict = d.update(100 + rng.gauss(0, 2), T0 + timedelta(minutes=step_min * i))
        high += i * step_min >= 3 * 1440 and verdict.rarity >= 0.3
    return high / (days - 3)


def test_a_one_minute_series_is_not_five_times_as_noisy_per_day_as_a_five_minute_one() -> None:
    # rated per point, the 1-minute series had 5x the chances a day: 2.2 against 0.5 here
    one = sum(high_points_per_day(1, 30, seed) for seed in (3, 4))
    five = sum(high_points_per_day(5, 30, seed) for seed in (3, 4))
    assert five > 0
    assert one <= 1.5 * five


def steps(seconds: list[float]) -> SamplingStep:
    s = SamplingStep()
    t = 1_700_000_000.0
    s.decades(t)
    for gap in seconds:
        t += gap
        s.decades(t)
    return s


@pytest.mark.parametrize(
    ("step_s", "decades"),
    [(300, 0.0), (60, math.log10(5)), (3600, -math.log10(12)), (86_400, -math.log10(12))],
)
def test_the_shift_is_the_decades_between_the_step_and_five_minutes(
    step_s: float, decades: float
) -> None:
    s = steps([step_s] * 50)
    assert s.decades(s.last + step_s) == pytest.approx(decades)


def test_duplicates_and_out_of_order_rows_do_not_change_the_step() -> None:
    s = steps([300.0] * 50)
    before = s.decades(s.last)  # a duplicate timestamp
    assert s.decades(s.last - 600) == before  # a row from the past
    assert before == pytest.approx(0.0)


def test_one_long_gap_moves_the_step_only_a_little() -> None:
    s = steps([300.0] * 200 + [86_400.0])  # a day of missing data, then normal again
    # clamped at an hour (12 steps), one gap of 100 in the mean: 0.01 x log(12)
    assert s.decades(s.last + 300) == pytest.approx(0.0, abs=0.02)


def test_the_first_point_scores_on_the_reference_step() -> None:
    assert SamplingStep().decades(1_700_000_000.0) == 0.0


def test_the_step_round_trips_through_its_checkpoint() -> None:
    s = steps([60.0, 61.0, 59.0, 3600.0, 60.0])
    restored, end = SamplingStep.load(s.dump())
    assert end == len(s.dump())
    t = s.last + 60
    assert restored.decades(t) == s.decades(t)
