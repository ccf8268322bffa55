"""The `likelihood` detector: prediction error turned into a calibrated tail probability.

1. Prediction: an exponentially weighted level and spread of the value (optionally
   one per time-of-day slot, for daily or weekly seasonality). The raw score of a
   point is how improbable its deviation is under that model: erf(z / sqrt 2).
2. Calibration: a Gaussian of raw scores over a long horizon and a short average of
   recent raw scores; the anomaly likelihood is how far into that long-term tail the
   short average lies (Numenta's anomaly likelihood, over EW estimates instead of a
   window, so memory stays a few dozen floats). The output is the log-scaled
   likelihood, so scores near 1 are rare and rarely tied, and mean the same on
   every series whatever its units.

Everything adapts: after a level shift the new normal becomes the prediction within
a few hundred points, so one change is reported as one episode, not forever.
Test-then-train: each point is scored against the model of the points before it.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime

# One configuration for every series, chosen for reasons, not per file:
FAST = 0.05  # level/spread: ~20 points of memory, so a level shift is learned quickly
SLOW_SPREAD = 0.002  # floor of the spread: remembers the quiet noise level
LONG = 0.001  # distribution of raw scores: ~1000 points
SHORT = 0.3  # recent raw scores: ~3 points
PEAK_DECAY = 0.995  # the episode peak halves in ~140 points
DAMPING = 0.3
_LOG_FLOOR = math.log(1e-10)

_VERSION = 1


class LikelihoodState:
    """Per-series state: a handful of floats (plus one level/spread per season slot)."""

    __slots__ = ("long_m", "long_v", "n", "peak", "short", "slots", "slow_v")

    def __init__(self, season_slots: int) -> None:
        self.n = 0
        self.slots: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(max(season_slots, 1))]
        self.slow_v = 0.0
        self.long_m = 0.0
        self.long_v = 0.0
        self.short = 0.0
        self.peak = 0.0


def slot_of(at: datetime, season: str) -> int:
    if season == "daily":
        return at.hour
    if season == "weekly":
        return at.weekday() * 24 + at.hour
    return 0


def slots_for(season: str) -> int:
    return {"daily": 24, "weekly": 168}.get(season, 1)


def score(state: LikelihoodState, value: float, slot: int) -> tuple[float, float, float, float]:
    """Score `value`, then learn it.

    Returns (episode score, likelihood score, expected, spread): the likelihood score
    is the calibrated tail probability, log-scaled to [0, 1]; the episode score is the
    same, damped after the first peak of an episode (what a ranking or a benchmark
    threshold should see). Alerting debounces on the likelihood score.
    """
    level = state.slots[slot if slot < len(state.slots) else 0]
    mean, var, seen = level
    if seen < 1 and state.n > 0:
        # a season slot seen for the first time borrows the global model (slot 0 history)
        donor = max(state.slots, key=lambda s: s[2])
        mean, var = donor[0], donor[1]
    spread = math.sqrt(max(var, state.slow_v))
    # a flat or all-zero history must not make every later wiggle infinitely unlikely
    floor = 1e-3 * abs(mean) + 1e-9
    z = abs(value - mean) / max(spread, floor)
    raw = min(z, 50.0) if state.n > 0 else 0.0

    # calibration against this series' own history of raw scores
    state.short += SHORT * (raw - state.short)
    sd = math.sqrt(state.long_v) if state.long_v > 0 else 0.0
    if state.n < 10 or sd < 1e-9:
        likelihood = 0.0
    else:
        likelihood = 0.5 * (1.0 + math.erf((state.short - state.long_m) / (sd * math.sqrt(2.0))))
    d = raw - state.long_m
    state.long_m += LONG * d
    state.long_v = (1 - LONG) * (state.long_v + LONG * d * d)

    # learn the value (after scoring it)
    if seen < 1:
        level[0], level[1] = (value, var) if state.n == 0 else (mean, var)
    delta = value - level[0]
    level[0] += FAST * delta
    level[1] = (1 - FAST) * (level[1] + FAST * delta * delta)
    level[2] = seen + 1
    state.slow_v = (1 - SLOW_SPREAD) * (state.slow_v + SLOW_SPREAD * delta * delta)
    state.n += 1

    calibrated = min(max(math.log(max(1.0 - likelihood, 1e-10)) / _LOG_FLOOR, 0.0), 1.0)
    # one episode, one high score: within an episode only a new peak scores high, so a
    # long anomaly does not read as hundreds of separate detections
    peak = state.peak
    state.peak = max(calibrated, peak * PEAK_DECAY)
    episode = calibrated * DAMPING if calibrated < peak else calibrated
    return episode, calibrated, mean, spread


def dump(state: LikelihoodState) -> bytes:
    head = struct.pack("<HI", _VERSION, len(state.slots))
    body = struct.pack(
        f"<q5d{3 * len(state.slots)}d",
        state.n,
        state.slow_v,
        state.long_m,
        state.long_v,
        state.short,
        state.peak,
        *(x for s in state.slots for x in s),
    )
    return head + body


def load(data: bytes) -> LikelihoodState:
    version, n_slots = struct.unpack_from("<HI", data)
    if version != _VERSION:
        raise ValueError(f"unsupported likelihood state version {version}")
    values = struct.unpack_from(f"<q5d{3 * n_slots}d", data, struct.calcsize("<HI"))
    s = LikelihoodState(n_slots)
    s.n = int(values[0])
    s.slow_v, s.long_m, s.long_v, s.short, s.peak = (float(v) for v in values[1:6])
    flat = values[6:]
    s.slots = [
        [float(flat[i]), float(flat[i + 1]), float(flat[i + 2])] for i in range(0, len(flat), 3)
    ]
    return s
