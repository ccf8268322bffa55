"""A second, coarser time scale: the series seen an hour at a time.

Every other surprise is taken at the sampling step: one point against its forecast,
its value against the long-run distribution, a short run of point surprises. Some
changes operators care about live at a coarser scale: a shift smaller than the point
noise that lasts an hour, a slow climb whose every point is unremarkable. Averaged
over a block of points, the noise shrinks and such a change stands out.

Blocks are the points of one hour at the series' learned sampling step (timescale.py),
B = 3600 s / step points, fixed when a block starts. A series sampled every half hour
or slower has no coarser hour to see (B < 2): it gets no block scale. When a block
completes, two raw surprises are taken, each calibrated on its own like every other
surprise (`calibration`); the block scores the larger of those CHANNELS keeps (by
default the novelty alone):

- **block error**: the mean of the block's forecast errors (value minus the point
  forecast that scored it, signed, so noise cancels and a lasting departure adds up),
  in units of the spread of past block errors. The spread is learned from block errors,
  not derived from the point spread / sqrt(B): that assumes independent points, which
  real series are not, and the assumption is what cost an earlier mean-of-points
  novelty its false positives;
- **block novelty**: the block's mean against the long-run mean of block means, in
  units of their long-run spread (the same memory in time as the point novelty).

The detector combines the block's score by max into the point that completes it. A
block is rated as one point of the series (PER_TIME off): rated per unit of time, as
its B steps, each block channel would be rare as often per day as each point channel,
and on the dev split that added more false positives than windows. Each point's error
counts at most POINT_CLIP point spreads. State: a few floats and two calibrators, about
1.2 KB. Off by default (`likelihood.BLOCKS`); docs/anomaly.md has the figures.
"""

from __future__ import annotations

import math
import struct

from processors.anomaly.calibration import Calibrator
from processors.anomaly.novelty import NOVELTY

BLOCK_S = 3600.0  # a block spans an hour: the scale at which a page's "last hours" are read
MIN_BLOCK = 2  # a block of one point is the point scale again
BLOCK_SPREAD = 0.02  # block errors' spread: ~50 blocks (two days) of memory
CLIP = 8.0  # as the point spread: one wild block teaches the spread at most 8 spreads
MAX_SURPRISE = 50.0
POINT_CLIP = 3.0  # a point's error counts at most 3 point spreads: a point further out is
# the point scale's news, and one outlier must not make its whole hour rare as well
# the block's mean against the long run of block means alone; "error" / "both" add the
# mean forecast error, which brought more false positives than windows (docs/anomaly.md)
CHANNELS = "novelty"  # "novelty" | "error" | "both"
# a block is rated as one point of the series (True: per unit of time, as its B steps,
# which makes each block channel as often rare per day as each point channel)
PER_TIME = False
_FORMAT = "<3q5d"  # size, left, blocks, sum of values, sum of errors, error spread^2, m, v


class Blocks:
    __slots__ = ("err_cal", "err_v", "left", "m", "n", "nov_cal", "size", "sum_e", "sum_v", "v")

    def __init__(self) -> None:
        self.size = 0  # points in the block under way (0: none started)
        self.left = 0  # points still to come in it
        self.sum_v = self.sum_e = 0.0
        self.n = 0  # blocks completed
        self.err_v = 0.0
        self.m = self.v = 0.0
        self.err_cal = Calibrator()
        self.nov_cal = Calibrator()

    def add(self, value: float, error: float, unit: float, log_step: float, scored: bool) -> float:
        """Add a point (its value, signed forecast error and the forecast's spread); the
        block's calibrated score (per block, not yet rated per unit of time) when this
        point completes a block, else -1.0."""
        left = self.left
        if left <= 0:
            size = round(BLOCK_S / math.exp(log_step))
            if size < MIN_BLOCK:
                return -1.0
            self.size = left = size
            self.sum_v = self.sum_e = 0.0
        if POINT_CLIP:
            bound = POINT_CLIP * unit
            if error > bound:
                value -= error - bound
                error = bound
            elif error < -bound:
                value -= error + bound
                error = -bound
        self.sum_v += value
        self.sum_e += error
        left -= 1
        self.left = left
        if left:
            return -1.0
        return self._complete(scored)

    def decades(self) -> float:
        """How many decades the block's B steps shift its rating beyond a point's (0 when
        a block is rated as one point)."""
        return math.log10(self.size) if PER_TIME else 0.0

    def _complete(self, scored: bool) -> float:
        size = self.size
        mean = self.sum_v / size
        err = self.sum_e / size
        n = self.n
        score = 0.0
        # the block error, in the spread of past block errors
        err_v = self.err_v
        sd = math.sqrt(err_v)
        floor = 1e-3 * abs(mean) + 1e-9
        unit = sd if sd > floor else floor
        a = abs(err)
        if n > 0 and CHANNELS != "novelty":
            raw = a / unit
            s = self.err_cal.calibrate(raw if raw < MAX_SURPRISE else MAX_SURPRISE)
            if scored:
                score = s
        if n > 2 and a > CLIP * unit:
            a = CLIP * unit
        rate = 1.0 / (n + 1)
        rate = rate if rate > BLOCK_SPREAD else BLOCK_SPREAD
        self.err_v = err_v + rate * (a * a - err_v)
        # the block's mean against the long run of block means (the point novelty's
        # memory in time: B points a block)
        m = self.m
        if n > 0 and CHANNELS != "error":
            sd = math.sqrt(self.v)
            raw = abs(mean - m) / (sd if sd > floor else floor)
            s = self.nov_cal.calibrate(raw if raw < MAX_SURPRISE else MAX_SURPRISE)
            if scored and s > score:
                score = s
        rate = 1.0 / (n + 1)
        slow = size * NOVELTY
        rate = rate if rate > slow else slow
        d = mean - m
        self.m = m + rate * d
        self.v = (1.0 - rate) * (self.v + rate * d * d)
        self.n = n + 1
        return score

    def dump(self) -> bytes:
        return (
            struct.pack(
                _FORMAT,
                self.size,
                self.left,
                self.n,
                self.sum_v,
                self.sum_e,
                self.err_v,
                self.m,
                self.v,
            )
            + self.err_cal.dump()
            + self.nov_cal.dump()
        )

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Blocks, int]:
        b = cls()
        size, left, n, b.sum_v, b.sum_e, b.err_v, b.m, b.v = struct.unpack_from(
            _FORMAT, data, offset
        )
        b.size, b.left, b.n = int(size), int(left), int(n)
        b.err_cal, offset = Calibrator.load(data, offset + struct.calcsize(_FORMAT))
        b.nov_cal, offset = Calibrator.load(data, offset)
        return b, offset
