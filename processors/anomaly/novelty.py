"""The value-novelty surprise: how far a value lies from the series' long-run distribution.

A forecast adapts within a few dozen points, which is right for alerting on a change
but forgets that a new level is one the series has never been at. The value's own
distribution (mean and spread over ~10,000 points, a month of 5-minute data)
remembers. The surprise is the distance from that mean in units of that spread,
calibrated like any other (`calibration`): "how rare is a value this far out, for
this series". Both detectors score a point by the larger of their forecast surprise
and this one.
"""

from __future__ import annotations

import math
import struct

from processors.anomaly.calibration import Calibrator

NOVELTY = 0.0001  # ~10,000 points of memory
MAX_SURPRISE = 50.0
_FORMAT = "<q2d"
_sqrt = math.sqrt


class Novelty:
    __slots__ = ("cal", "m", "n", "v")

    def __init__(self) -> None:
        self.n = 0
        self.m = 0.0
        self.v = 0.0
        self.cal = Calibrator()

    def update(self, value: float, scored: bool) -> float:
        """The calibrated novelty of `value` (0.0 unless `scored`), then learn it."""
        m, v, n = self.m, self.v, self.n
        d = value - m
        score = 0.0
        if scored:
            sd = _sqrt(v)
            floor = 1e-3 * (m if m >= 0.0 else -m) + 1e-9  # flat and all-zero starts
            raw = (d if d >= 0.0 else -d) / (sd if sd > floor else floor)
            score = self.cal.calibrate(raw if raw < MAX_SURPRISE else MAX_SURPRISE)
        # a plain running mean until it covers NOVELTY's horizon
        rate = 1.0 / (n + 1)
        rate = rate if rate > NOVELTY else NOVELTY
        step = rate * d
        self.m = m + step
        self.v = (1.0 - rate) * (v + step * d)  # (rate * d * d)
        self.n = n + 1
        return score

    def dump(self) -> bytes:
        return struct.pack(_FORMAT, self.n, self.m, self.v) + self.cal.dump()

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Novelty, int]:
        nv = cls()
        n, nv.m, nv.v = struct.unpack_from(_FORMAT, data, offset)
        nv.n = int(n)
        nv.cal, offset = Calibrator.load(data, offset + struct.calcsize(_FORMAT))
        return nv, offset
