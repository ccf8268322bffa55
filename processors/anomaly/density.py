"""Distribution-free value novelty: how rarely the series has been where this value is.

`novelty` measures a value's distance from the series' long-run mean in spreads: a
Gaussian view. Real metrics are multi-modal and spiky (CPU with a nightly job, request
counts with bursts): a value between two usual levels is rare though close to the
mean, and a stay at a level the series visits only in brief spikes is rare as a stay
though each of its values is not far out. This keeps an exponentially weighted
histogram of the series' own values (~10,000 points of memory, as `novelty`) and
scores a value by the probability mass of its bin,

    p = (1 - u) * share of the bin + u * Gaussian mass of the bin,  raw = -log10 p

where u = 1 / (points seen + 1) (the rule of succession, with the memory as the count
once it is full) is the prior share of values where the series has never been, spread
as a Gaussian of the series' mean and spread would spread it: a value never seen before
scores the rule of succession's decades plus the Gaussian's, so far-out values stay
ranked by their distance. Its run (the mean raw surprise of the last ~10 points, the
run of surprises' window) makes a stay in a rare region rare. Both are calibrated on
their own like any other surprise (`calibration`).

Bins: asinh-spaced in units of the series' spread around its mean (a quarter of a
spread wide near the mean, widening geometrically to ~1,500 spreads at the ends), so
any value lands in a bin and a heavy tail does not need thousands of them. The grid is
drawn on the mean and spread of its time and redrawn (the mass moved to the new bins,
spread evenly over each old bin) only when the spread has halved or doubled or the mean
has moved a spread: a bin keeps its meaning between redraws.
"""

from __future__ import annotations

import math
import struct
from array import array

from processors.anomaly.calibration import Calibrator, log10_tail
from processors.anomaly.novelty import NOVELTY

MEMORY = NOVELTY  # ~10,000 points: the Gaussian novelty's mean and spread are this one's
PER_UNIT = 4.0  # bins per unit of asinh(distance / spread): a quarter spread at the mean
HALF = 32  # bins on each side: asinh 8, ~1,500 spreads
N_BINS = 2 * HALF
REGRID = 2.0  # redraw the grid when the spread left [1/2, 2] x the grid's
MAX_SURPRISE = 50.0
_RESCALE = 1e100
_PLAIN = math.ceil(1.0 / MEMORY)  # until then every value weighs the same
_LAST = N_BINS - 1
_REGRID2 = REGRID * REGRID
_GROW = 1.0 / (1.0 - MEMORY)
_floor, _asinh, _log10 = math.floor, math.asinh, math.log10
_HALF = float(HALF)  # (float + int is not specialised: float + float is, same result)
_FORMAT = f"<4d{N_BINS}d"  # grid mean, grid spread, weight, mass, bins


def _edge(k: int) -> float:
    """The lower edge of bin k in grid spreads from the grid's mean (-inf for bin 0)."""
    return -math.inf if k <= 0 else math.sinh((k - HALF) / PER_UNIT)


def _gauss_decades(k: int) -> float:
    """-log10 of the standard normal mass of bin k."""
    a, b = _edge(k), _edge(k + 1) if k + 1 < N_BINS else math.inf
    if a >= 0.0:
        lo, hi = a, b
    elif b <= 0.0:
        lo, hi = -b, -a
    else:
        r2 = math.sqrt(2.0)
        return -math.log10(1.0 - 0.5 * math.erfc(-a / r2) - 0.5 * math.erfc(b / r2))
    tail_lo = log10_tail(lo)
    if hi == math.inf:
        return tail_lo
    tail_hi = log10_tail(hi)
    # mass = P(> lo) - P(> hi) = P(> lo) (1 - 10^(tail_lo - tail_hi))
    return tail_lo - math.log10(1.0 - 10.0 ** (tail_lo - tail_hi))


_PRIOR = array("d", (_gauss_decades(k) for k in range(N_BINS)))
_PRIOR_MASS = array("d", (10.0**-d for d in _PRIOR))


class Density:
    """Per-series state: the value histogram, its grid, and the calibration of its surprise."""

    __slots__ = ("bins", "cal", "gm", "gs", "mass", "weight")

    def __init__(self) -> None:
        self.gm = 0.0
        self.gs = 0.0  # 0: no grid yet
        self.weight = 1.0
        self.mass = 0.0
        self.bins = array("d", bytes(8 * N_BINS))
        self.cal = Calibrator()

    def update(self, value: float, scored: bool, n: int, m: float, v: float) -> float:
        """The calibrated surprise of `value` (0.0 unless `scored`), then learn it.

        `n`, `m` and `v` are the points seen and the long-run mean and variance before
        this one: the Gaussian novelty's (novelty.py), which keeps them over the same
        memory, so they are not kept twice."""
        gm, gs = self.gm, self.gs
        if not n:
            gm, gs = self.gm, self.gs = value, 1e-3 * abs(value) + 1e-9
        elif v > _REGRID2 * gs * gs or _REGRID2 * v < gs * gs or m - gm > gs or gm - m > gs:
            sd = math.sqrt(v)
            floor = 1e-3 * abs(m) + 1e-9  # flat and all-zero starts
            sd = sd if sd > floor else floor
            if sd != gs:
                self._regrid(m, sd)
                gm, gs = m, sd
        # (floor, not int(): the same bin once clamped, without the type call)
        try:
            k = _floor(PER_UNIT * _asinh((value - gm) / gs) + _HALF)
        except (OverflowError, ValueError):
            # a value hundreds of decades from the grid (or a grid the variance of such
            # values overflowed): the outermost bin on its side
            k = _LAST if value > gm else 0
        k = 0 if k < 0 else (_LAST if k > _LAST else k)
        bins = self.bins
        point = 0.0
        if n:
            u = 1.0 / (n + 1) if n < _PLAIN else MEMORY
            # a bin's share is read with half of each neighbour's (a [1/4, 1/2, 1/4]
            # kernel): a value at a bin's edge is not rare for the bin it just missed
            share = bins[k]
            left = bins[k - 1] if k else share
            right = bins[k + 1] if k < _LAST else share
            share = 0.5 * share + 0.25 * (left + right)
            p = (1.0 - u) * share / self.mass + u * _PRIOR_MASS[k]
            raw = -_log10(p) if p > 0.0 else _PRIOR[k] - _log10(u)
            if scored:
                point = self.cal.calibrate(raw if raw < MAX_SURPRISE else MAX_SURPRISE)
        # learn: every value weighs the same until the memory is full, then older ones decay
        if n >= _PLAIN:
            weight = self.weight * _GROW
            if weight > _RESCALE:
                f = 1.0 / weight
                self.bins = bins = array("d", (b * f for b in bins))
                self.mass *= f
                weight = 1.0
            self.weight = weight
        else:
            weight = self.weight
        bins[k] += weight
        self.mass += weight
        return point

    def _regrid(self, m: float, sd: float) -> None:
        """Move the histogram's mass onto a grid around `m` in units of `sd`."""
        gm, gs = self.gm, self.gs
        new = array("d", bytes(8 * N_BINS))
        for k, w in enumerate(self.bins):
            if not w:
                continue
            # the old bin's value range in new grid units (an end bin: its inner edge)
            lo = _edge(k) if k > 0 else _edge(1)
            hi = _edge(k + 1) if k + 1 < N_BINS else _edge(N_BINS - 1)
            a = PER_UNIT * math.asinh((gm + gs * lo - m) / sd) + HALF
            b = PER_UNIT * math.asinh((gm + gs * hi - m) / sd) + HALF
            a = 0.0 if a < 0.0 else (N_BINS - 1e-9 if a > N_BINS - 1e-9 else a)
            b = 0.0 if b < 0.0 else (N_BINS - 1e-9 if b > N_BINS - 1e-9 else b)
            if b - a < 1e-9:
                new[int(a)] += w
                continue
            j = int(a)
            while j < b:
                overlap = min(b, j + 1) - max(a, j)
                if overlap > 0.0:
                    new[j] += w * overlap / (b - a)
                j += 1
        self.bins, self.gm, self.gs = new, m, sd

    def memory_bytes(self) -> int:
        # the objects and array headers (~530 B) + the value histogram and the calibrator's bins
        return 530 + 8 * N_BINS + 8 * len(self.cal.bins)

    def dump(self) -> bytes:
        head = struct.pack(
            _FORMAT,
            self.gm,
            self.gs,
            self.weight,
            self.mass,
            *self.bins,
        )
        return head + self.cal.dump()

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Density, int]:
        d = cls()
        d.gm, d.gs, d.weight, d.mass, *bins = struct.unpack_from(_FORMAT, data, offset)
        d.bins = array("d", bins)
        d.cal, offset = Calibrator.load(data, offset + struct.calcsize(_FORMAT))
        return d, offset
