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


def step(d: Density, g: Novelty, v: float, scored: bool = True) -> tuple[float, float, float]:
    """(density point, density run, Gaussian novelty) of `v`, as the detector scores it:
    the density reads the long-run mean and spread the Gaussian novelty keeps."""
    point, run = d.update(v, scored, g.n, g.m, g.v)
    return point, run, g.update(v, scored)


def learned(values: list[float]) -> tuple[Density, Novelty]:
    d, g = Density(), Novelty()
    for i, v in enumerate(values):
        step(d, g, v, i >= SETTLE)
    return d, g


def test_a_value_between_two_usual_levels_is_rare_though_it_is_the_mean() -> None:
    density, gaussian = learned(two_levels(3000))
    # 5.0 is the long-run mean: no distance from it in spreads, but the series is never there
    point, _, gauss = step(density, gaussian, 5.0)
    assert gauss < 0.1
    assert point >= 0.3


@pytest.mark.parametrize("value", [0.2, 9.7])
def test_a_value_at_a_usual_level_is_not_rare(value: float) -> None:
    density, gaussian = learned(two_levels(3000))
    point, _, _ = step(density, gaussian, value)
    assert point < 0.1


def test_a_stay_at_a_level_seen_only_in_brief_spikes_is_rarer_as_a_run() -> None:
    rng = random.Random(2)
    values = [100 + rng.gauss(0, 2) for _ in range(4000)]
    for i in range(200, 4000, 200):
        values[i] = 130.0  # a one-point spike every ~17 hours at 5-minute samples
    density, gaussian = learned(values)
    spike_run = density.run_cal.calibrate(density.run)  # the run is low between spikes
    stay = [step(density, gaussian, 130.0 + rng.gauss(0, 1)) for _ in range(10)]
    points, runs = [p for p, _, _ in stay], [r for _, r, _ in stay]
    assert spike_run < 0.1
    # each value alone is a level the series has visited, but ten of them in a row are not
    assert runs[-1] >= 0.3
    assert runs[-1] > max(points)


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
