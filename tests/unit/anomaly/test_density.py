"""The distribution-free value novelty: rare where the series has rarely been, not far out."""

from __future__ import annotations

import random

import pytest

from processors.anomaly.calibration import SETTLE
from processors.anomaly.density import Density
from processors.anomaly.novelty import Novelty


def two_levels(n: int, seed: int = 1) -> list[float]:
    """A metric that sits at 0 or at 10 (idle / busy), never in between."""
    rng = random.Random(seed)
    return [rng.choice((0.0, 10.0)) + rng.gauss(0, 0.5) for _ in range(n)]


def step(d: Density, g: Novelty, v: float, scored: bool = True) -> tuple[float, float]:
    """(density surprise, Gaussian novelty) of `v`, as the detector scores it: the
    density reads the long-run mean and spread the Gaussian novelty keeps."""
    point = d.update(v, scored, g.n, g.m, g.v)
    return point, g.update(v, scored)


def learned(values: list[float]) -> tuple[Density, Novelty]:
    d, g = Density(), Novelty()
    for i, v in enumerate(values):
        step(d, g, v, i >= SETTLE)
    return d, g


def test_a_value_between_two_usual_levels_is_rare_though_it_is_the_mean() -> None:
    density, gaussian = learned(two_levels(3000))
    # 5.0 is the long-run mean: no distance from it in spreads, but the series is never there
    point, gauss = step(density, gaussian, 5.0)
    assert gauss < 0.1
    assert point >= 0.3


@pytest.mark.parametrize("value", [0.2, 9.7])
def test_a_value_at_a_usual_level_is_not_rare(value: float) -> None:
    density, gaussian = learned(two_levels(3000))
    point, _ = step(density, gaussian, value)
    assert point < 0.1


def test_the_histogram_follows_a_series_that_moves_to_a_new_level() -> None:
    rng = random.Random(3)
    values = [100 + rng.gauss(0, 2) for _ in range(2000)]
    values += [200 + rng.gauss(0, 2) for _ in range(8000)]
    density, gaussian = learned(values)
    assert density.mass == pytest.approx(sum(density.bins))
    # the new level is now where the series usually is; the old one is still remembered
    assert step(density, gaussian, 200.0)[0] < 0.1
    assert step(density, gaussian, 100.0)[0] < 0.3
    assert step(density, gaussian, 150.0)[0] >= 0.3


def test_state_round_trips_and_scores_identically() -> None:
    values = two_levels(1500)
    density, gaussian = learned(values[:1000])
    restored, end = Density.load(density.dump())
    assert end == len(density.dump())
    twin, _ = Novelty.load(gaussian.dump())
    for v in values[1000:]:
        assert step(restored, twin, v) == step(density, gaussian, v)


def test_a_detector_with_the_density_on_restores_exactly_and_stays_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from processors.anomaly import likelihood
    from processors.anomaly.likelihood import LikelihoodDetector

    monkeypatch.setattr(likelihood, "DENSITY", True)
    values = two_levels(2000, seed=4)
    at = [datetime.fromtimestamp(1_767_225_600 + 300 * i, UTC) for i in range(len(values))]
    d = LikelihoodDetector("weekly")
    for v, t in zip(values[:1500], at, strict=False):
        d.score(v, t)
    assert d.density is not None and d.memory_bytes() < 16 * 1024
    restored = LikelihoodDetector.load("weekly", d.dump())
    for v, t in zip(values[1500:], at[1500:], strict=True):
        assert restored.score(v, t) == d.score(v, t)
    # a value between the two usual levels: the density finds it, the Gaussian view not
    monkeypatch.setattr(likelihood, "DENSITY", False)
    plain = LikelihoodDetector("weekly")
    for v, t in zip(values, at, strict=True):
        plain.score(v, t)
    assert d.score(5.0, at[-1])[1] >= 0.3 > plain.score(5.0, at[-1])[1]
