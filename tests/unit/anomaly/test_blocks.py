"""The second, coarser time scale (blocks.py): what it finds, what it costs on noise."""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import AnomalySeries, likelihood
from processors.anomaly.blocks import Blocks
from processors.anomaly.likelihood import LikelihoodDetector
from schemas.anomaly import AnomalySpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
PER_DAY = 288


def at(i: int) -> datetime:
    return T0 + timedelta(minutes=5 * i)


def noise(n: int, seed: int, kind: str = "gauss") -> list[float]:
    rng = random.Random(seed)
    if kind == "lognormal":
        return [100.0 * rng.lognormvariate(0.0, 0.5) for _ in range(n)]
    return [100.0 + rng.gauss(0.0, 2.0) for _ in range(n)]


def shifted_for_three_hours(seed: int) -> list[float]:
    """Ten quiet days, then three hours one noise spread higher."""
    values = noise(12 * PER_DAY, seed)
    for i in range(SHIFT, SHIFT + 36):
        values[i] += 2.0
    return values


SHIFT = 10 * PER_DAY + 6


def scores(values: list[float]) -> list[float]:
    d = AnomalySeries(AnomalySpec())
    return [d.update(v, at(i)).score for i, v in enumerate(values)]


def test_a_shift_smaller_than_the_noise_that_lasts_hours_is_rare_at_the_hour_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window, quiet = slice(SHIFT, SHIFT + 48), slice(PER_DAY, SHIFT)
    found_by_points = 0
    for seed in range(1, 7):
        values = shifted_for_three_hours(seed)
        monkeypatch.setattr(likelihood, "BLOCKS", "")
        plain = scores(values)
        monkeypatch.setattr(likelihood, "BLOCKS", "score")
        coarse = scores(values)
        found_by_points += max(plain[window]) >= 0.3
        # an hour's mean is ~3.5 of its own spreads out, though no point need be rare
        assert max(coarse[window]) >= 0.3, seed
        # and on the ten quiet days before, the hour scale adds no rare point
        assert sum(s >= 0.3 for s in coarse[quiet]) == sum(s >= 0.3 for s in plain[quiet])
    assert found_by_points <= 3


def test_pure_noise_still_pages_a_series_at_most_once_a_month(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(likelihood, "BLOCKS", "score")
    for kind in ("gauss", "lognormal"):
        for seed in (11, 12):
            d = AnomalySeries(AnomalySpec())
            fired = [
                i
                for i, v in enumerate(noise(30 * PER_DAY, seed, kind))
                if d.update(v, at(i)).transition == "firing"
            ]
            assert len([i for i in fired if i >= PER_DAY]) <= 1, (kind, seed, fired)


def test_a_series_sampled_hourly_has_no_coarser_hour() -> None:
    b = Blocks()
    log_hour = 8.19  # log(3600)
    assert all(b.add(100.0, 0.0, 1.0, log_hour, True) == -1.0 for _ in range(500))
    assert b.n == 0


def test_the_state_stays_bounded_and_restores_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(likelihood, "BLOCKS", "score")
    values = shifted_for_three_hours(4)
    d = LikelihoodDetector("weekly")
    for i, v in enumerate(values[:3000]):
        d.score(v, at(i))
    assert d.blocks is not None
    size = len(d.blocks.dump())
    restored = LikelihoodDetector.load("weekly", d.dump())
    for i, v in enumerate(values[3000:], start=3000):
        assert restored.score(v, at(i)) == d.score(v, at(i))
    assert len(d.blocks.dump()) == size  # a fixed layout, whatever the series' length

    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        series = [AnomalySeries(AnomalySpec()) for _ in range(10)]
        for s in series:
            for i, v in enumerate(values[:700]):
                s.update(v, at(i))
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traced = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(series)
    assert traced < 16 * 1024
    assert abs(series[0].memory_bytes() - traced) < 0.1 * traced
