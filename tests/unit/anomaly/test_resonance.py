"""Window novelty by adaptive resonance: a new shape is news once, a repeated one is not."""

from __future__ import annotations

import gc
import math
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import AnomalySeries, likelihood, resonance
from processors.anomaly.calibration import SETTLE
from processors.anomaly.likelihood import LikelihoodDetector
from processors.anomaly.resonance import BOXES, WINDOW, Resonance, haar
from schemas.anomaly import AnomalySpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
ZIGZAG = [30.0 if k % 2 else -30.0 for k in range(10)]  # within the daily range, a new shape


def daily(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 2) for i in range(n)]


def run(r: Resonance, values: list[float], start: int = 0) -> list[float]:
    return [r.update(v, start + i >= SETTLE) for i, v in enumerate(values)]


@pytest.mark.parametrize("features", ["values", "haar"])
def test_a_window_shape_never_seen_scores_high(
    features: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resonance, "FEATURES", features)
    for seed in (1, 2, 3):
        values = daily(6000, seed)
        values[5000:5010] = [100 + z for z in ZIGZAG]
        scores = run(Resonance(), values)
        # every value of the zigzag lies inside the series' usual range: its shape is news
        assert max(scores[5000:5012]) >= 0.3, seed
        ordinary = scores[1000:5000]
        assert sum(s >= 0.3 for s in ordinary) <= 2, seed


def test_a_repeating_shape_stops_scoring() -> None:
    values = daily(8000, 4)
    starts = range(3000, 8000, 500)
    for s in starts:
        values[s : s + 10] = [100 + z for z in ZIGZAG]
    scores = run(Resonance(), values)
    first, *_, last = (max(scores[s : s + 12]) for s in starts)
    assert first >= 0.3
    assert last < 0.1  # its category resonates: a shape seen nine times before


def test_the_haar_coefficients_keep_the_mean_first() -> None:
    assert haar([0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0]) == [5.0, 5.0, 0, 0, 0, 0, 0, 0]
    coefficients = haar([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert coefficients[0] == 4.5 and len(coefficients) == 8


def test_the_state_stays_bounded_on_a_series_that_never_repeats() -> None:
    rng = random.Random(5)
    walk, values = 0.0, []
    for _ in range(20000):
        walk += rng.gauss(0, 1)
        values.append(walk)
    r = Resonance()
    run(r, values)
    assert len(r.slo) == BOXES
    assert len(r.lo) == len(r.hi) == BOXES * WINDOW
    size = len(r.dump())
    run(r, values[:5000], len(values))
    assert len(r.dump()) == size


def test_state_round_trips_and_scores_identically() -> None:
    values = daily(4000, 6)
    values[3500:3510] = [100 + z for z in ZIGZAG]
    r = Resonance()
    run(r, values[:3000])
    restored, end = Resonance.load(r.dump())
    assert end == len(r.dump())
    assert run(restored, values[3000:], 3000) == run(r, values[3000:], 3000)


def test_a_detector_with_resonance_on_restores_exactly_and_stays_under_16_kib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(likelihood, "RESONANCE", "score")
    values = daily(2000, 7)
    values[1800:1810] = [100 + z for z in ZIGZAG]
    ats = [T0 + timedelta(minutes=5 * i) for i in range(len(values))]
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        series = [AnomalySeries(AnomalySpec()) for _ in range(4)]
        for s in series:
            for v, at in zip(values[:1500], ats, strict=False):
                s.update(v, at)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traced = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(series)
    d = series[0]
    assert isinstance(d.state, LikelihoodDetector) and d.state.resonance is not None
    assert len(d.state.resonance.slo) == BOXES  # every box in use
    assert traced < 16 * 1024
    assert abs(d.memory_bytes() - traced) < 0.1 * traced
    twin = AnomalySeries.from_bytes(AnomalySpec(), d.to_bytes())
    for v, at in zip(values[1500:], ats[1500:], strict=True):
        assert twin.update(v, at) == d.update(v, at)


def test_off_by_default_and_the_checkpoint_is_unchanged() -> None:
    d = LikelihoodDetector("weekly")
    assert likelihood.RESONANCE == "" and d.resonance is None
    d.score(1.0, T0)
    assert LikelihoodDetector.load("weekly", d.dump()).resonance is None
