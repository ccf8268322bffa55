"""The calibrated score means the same on every series: a tail probability of its own past."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import AnomalySeries
from processors.anomaly.calibration import DAMPING, Calibrator, Episode
from schemas.anomaly import AnomalySpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
NOISE: dict[str, Callable[[random.Random], float]] = {
    "gaussian": lambda r: 100 + r.gauss(0, 2),
    "lognormal": lambda r: math.exp(r.gauss(0, 1)),
    "pareto": lambda r: r.paretovariate(1.5),
    "counts": lambda r: float(int(r.expovariate(0.2))),
}


def scores(values: list[float], spec: AnomalySpec | None = None) -> list[float]:
    d = AnomalySeries(spec or AnomalySpec())
    return [d.update(v, T0 + timedelta(minutes=5 * i)).score for i, v in enumerate(values)]


@pytest.mark.parametrize("noise", NOISE, ids=str)
def test_pure_noise_alerts_about_once_in_a_thousand_whatever_its_tails(noise: str) -> None:
    rng = random.Random(3)
    s = scores([NOISE[noise](rng) for _ in range(6000)])[1000:]
    # 0.3 = a 1-in-1,000 surprise for this series; two surprises per point, so <= ~2e-3
    assert sum(x >= 0.3 for x in s) / len(s) <= 0.002


def test_a_recurring_spike_becomes_normal_but_a_bigger_one_does_not() -> None:
    rng = random.Random(1)
    values = [100 + rng.gauss(0, 2) for _ in range(288 * 12)]
    for day in range(1, 12):
        values[288 * day + 100] = 130.0  # the nightly job
    values[288 * 11 + 200] = 200.0
    s = scores(values)
    assert s[100 + 288] >= 0.3, "the first nightly spikes are news"
    assert max(s[288 * d + 100] for d in range(8, 12)) < 0.3, "after a week they are not"
    assert s[288 * 11 + 200] >= 0.3


def test_calibration_survives_the_histogram_rescale() -> None:
    rng = random.Random(2)
    raws = [abs(rng.gauss(0, 1)) * (5 if i % 97 == 0 else 1) for i in range(3000)]
    a = Calibrator()
    for r in raws[:1000]:
        a.calibrate(r)
    b, _ = Calibrator.load(a.dump())
    b.weight *= 1e99  # the same histogram in other units: renormalised on the next point
    b.mass *= 1e99
    for i in range(len(b.bins)):
        b.bins[i] *= 1e99
    for r in raws[1000:]:
        assert b.calibrate(r) == pytest.approx(a.calibrate(r), rel=1e-9, abs=1e-12)
    assert b.weight < 1e10


def test_a_never_seen_surprise_scores_at_least_three_decades() -> None:
    c = Calibrator()
    for _ in range(200):
        c.calibrate(0.5)
    assert c.calibrate(5.0) > 3 / (3 + 7)


def test_an_episode_scores_a_new_peak_only_when_it_is_clearly_rarer() -> None:
    # a burst whose points each come out a hair rarer than the last is one finding;
    # a point a decade rarer than the episode so far is a new one
    e = Episode()
    out = [e.step(c) for c in (0.35, 0.351, 0.353, 0.36, 0.5, 0.2)]
    assert out[0] == 0.35 and out[4] == 0.5
    assert out[1:4] == [c * DAMPING for c in (0.351, 0.353, 0.36)]
    assert out[5] == 0.2 * DAMPING


@pytest.mark.parametrize("first", [0.4, 0.99])
def test_a_surprise_hides_what_follows_for_the_same_time_however_rare_it_was(
    first: float,
) -> None:
    # a 1-in-10^3 and a 1-in-10^700 spike both stay in the episode 70-139 points: a
    # second, separate 1-in-10^3.5 finding 150 points later is news after either one
    e = Episode()
    out = [e.step(c) for c in [first] + [0.05] * 149 + [0.33]]
    assert out[0] == first
    assert out[-1] == 0.33
    e = Episode()
    out = [e.step(c) for c in [first] + [0.05] * 59 + [0.33]]
    assert out[-1] == pytest.approx(0.33 * DAMPING), "60 points later it is the same episode"
