"""Surprise -> calibrated score in [0, 1] that means the same on every series.

A detector measures how surprising a point is in its own units (a z-like distance
from its prediction). This module turns that raw surprise into a tail probability
against the series' own long-run distribution of surprises (Numenta's anomaly
likelihood, over exponentially weighted estimates instead of a window, so the state
is a few floats), and maps the tail probability to a score:

    score = D / (D + 10),  D = -log10(tail probability)

so 0.3 means "about 1 in 20,000", 0.5 means 1 in 10^10, and the score never
saturates at exactly 1.0 (a benchmark threshold sweep can always rank two points).

Episode score: within one episode only a new peak scores high (the running peak
decays with a half-life of ~1,400 points); the rest is damped. A long anomaly then
reads as one detection, not hundreds - what a ranking or a threshold sweep needs.
Alerting uses the undamped score with k-of-n debouncing instead.
"""

from __future__ import annotations

import math
import struct

LONG = 0.0003  # distribution of raw surprises: ~3,000 points of memory
PEAK_DECAY = 0.9995  # episode peak: half-life ~1,400 points
DAMPING = 0.3  # a point below the running peak keeps 30% of its score
DECADES = 10.0  # score 0.5 = tail probability 1e-10
SD_FLOOR = 0.1  # in units of the detector's raw surprise (a z-distance)
MIN_POINTS = 10  # no calibration before a handful of surprises were seen
SETTLE = 20  # detectors feed no surprise before their own spread estimate settles

_LN10 = math.log(10.0)
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_FORMAT = "<q3d"


def log10_tail(u: float) -> float:
    """-log10 P(N(0,1) > u), exact for small u and asymptotic where erfc underflows."""
    if u < 5.0:
        return -math.log10(max(0.5 * math.erfc(u / _SQRT2), 1e-300))
    return (0.5 * u * u + math.log(u) + _LOG_SQRT_2PI) / _LN10


class Calibrator:
    """Per-series calibration state: four numbers."""

    __slots__ = ("long_m", "long_v", "n", "peak")

    def __init__(self) -> None:
        self.n = 0
        self.long_m = 0.0
        self.long_v = 0.0
        self.peak = 0.0

    def update(self, raw: float) -> tuple[float, float]:
        """Score a raw surprise against the history before it, then learn it.

        Returns (episode score, calibrated score).
        """
        # a floor on the spread of surprises: after a flat or perfectly predictable
        # start, the first real surprise is very unlikely, not undefined
        sd = max(math.sqrt(self.long_v), SD_FLOOR)
        decades = log10_tail((raw - self.long_m) / sd) if self.n >= MIN_POINTS else 0.0
        # a plain running mean/variance until it covers LONG's horizon, so the early
        # estimates are not biased towards zero (which would flag ordinary noise)
        rate = max(LONG, 1.0 / (self.n + 1))
        d = raw - self.long_m
        self.long_m += rate * d
        self.long_v = (1.0 - rate) * (self.long_v + rate * d * d)
        self.n += 1
        calibrated = decades / (decades + DECADES) if decades > 0.0 else 0.0
        peak = self.peak
        self.peak = max(calibrated, peak * PEAK_DECAY)
        episode = calibrated if calibrated > peak else calibrated * DAMPING
        return episode, calibrated

    def dump(self) -> bytes:
        return struct.pack(_FORMAT, self.n, self.long_m, self.long_v, self.peak)

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Calibrator, int]:
        n, m, v, p = struct.unpack_from(_FORMAT, data, offset)
        c = cls()
        c.n, c.long_m, c.long_v, c.peak = int(n), float(m), float(v), float(p)
        return c, offset + struct.calcsize(_FORMAT)
