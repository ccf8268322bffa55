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


def learned(values: list[float]) -> tuple[Density, Novelty]:
    d, g = Density(), Novelty()
    for i, v in enumerate(values):
        d.update(v, i >= SETTLE)
        g.update(v, i >= SETTLE)
    return d, g


def test_a_value_between_two_usual_levels_is_rare_though_it_is_the_mean() -> None:
    density, gaussian = learned(two_levels(3000))
    # 5.0 is the long-run mean: no distance from it in spreads, but the series is never there
    assert gaussian.update(5.0, True) < 0.1
    point, _ = density.update(5.0, True)
    assert point >= 0.3


@pytest.mark.parametrize("value", [0.2, 9.7])
def test_a_value_at_a_usual_level_is_not_rare(value: float) -> None:
    density, _ = learned(two_levels(3000))
    point, _ = density.update(value, True)
    assert point < 0.1


def test_a_stay_at_a_level_seen_only_in_brief_spikes_is_rarer_as_a_run() -> None:
    rng = random.Random(2)
    values = [100 + rng.gauss(0, 2) for _ in range(4000)]
    for i in range(200, 4000, 200):
        values[i] = 130.0  # a one-point spike every ~17 hours at 5-minute samples
    density, _ = learned(values)
    spike_run = density.run_cal.calibrate(density.run)  # the run is low between spikes
    stay = [density.update(130.0 + rng.gauss(0, 1), True) for _ in range(10)]
    points, runs = [p for p, _ in stay], [r for _, r in stay]
    assert spike_run < 0.1
    # each value alone is a level the series has visited, but ten of them in a row are not
    assert runs[-1] >= 0.3
    assert runs[-1] > max(points)


def test_the_histogram_follows_a_series_that_moves_to_a_new_level() -> None:
    rng = random.Random(3)
    values = [100 + rng.gauss(0, 2) for _ in range(2000)]
    values += [200 + rng.gauss(0, 2) for _ in range(8000)]
    density, _ = learned(values)
    assert density.mass == pytest.approx(sum(density.bins))
    # the new level is now where the series usually is; the old one is still remembered
    assert density.update(200.0, True)[0] < 0.1
    assert density.update(100.0, True)[0] < 0.3
    assert density.update(150.0, True)[0] >= 0.3


def test_state_round_trips_and_scores_identically() -> None:
    values = two_levels(1500)
    density, _ = learned(values[:1000])
    restored, end = Density.load(density.dump())
    assert end == len(density.dump())
    for v in values[1000:]:
        assert restored.update(v, True) == density.update(v, True)
