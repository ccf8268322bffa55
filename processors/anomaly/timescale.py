"""Rarity per point -> rarity per unit of time: what a threshold should mean.

The calibration says how rare a surprise is among the series' *points*. A threshold
on that fires at a fixed rate per point, so the same rule would page five times as
often on a series scraped every minute as on one scraped every 5 minutes, twenty
times as often at a 15-second scrape, and twelve times less often on an hourly
series. An on-call engineer counts pages per day, not per sample.

So the score is taken relative to a 5-minute series: a point's tail probability p is
compared at the rate of surprises as large per unit of time, p / step, and the
calibration's scale keeps its meaning for 5-minute data (0.3 = 1 in 1,000 points,
about once in 3.5 days per surprise). `decades()` is log10(300 s / step): how many
decades rarer than that a point must be to score the same (negative: less rare).
A 1-minute series needs a 5x rarer point, an hourly one a 12x less rare one.

`holt_winters` fixes its step with its season period (the median of its first 12
gaps); `likelihood` learns it as it goes: a running geometric mean of the positive gaps
between timestamps (duplicates and out-of-order rows teach nothing; one long gap moves
it by a few percent). Gaps are clamped to [1 s, 1 h]: a point counts for at most an
hour, so a series sampled daily is not called rare on a one-in-three-points surprise.
"""

from __future__ import annotations

import math
import struct

REFERENCE_STEP_S = 300.0  # the sampling step on which 0.3 = 1 in 1,000 points was set
STEP_RATE = 0.01  # ~100 gaps of memory
MIN_STEP_S, MAX_STEP_S = 1.0, 3600.0
_FORMAT = "<q2d"  # gaps seen, mean log step, last timestamp
_LN10 = math.log(10.0)
_INF = math.inf
# gaps from which the plain mean's rate 1 / (gaps + 1) is no longer above STEP_RATE
_PLAIN = math.ceil(1.0 / STEP_RATE) - 1
_LOG_REFERENCE = math.log(REFERENCE_STEP_S)
_LOG_MIN_STEP, _LOG_MAX_STEP = math.log(MIN_STEP_S), math.log(MAX_STEP_S)


def _log_step(step_s: float) -> float:
    """log(step), the step clamped to [1 s, 1 h]."""
    x = math.log(step_s)
    return _LOG_MIN_STEP if x < _LOG_MIN_STEP else _LOG_MAX_STEP if x > _LOG_MAX_STEP else x


def _decades(log_step: float) -> float:
    """log10(300 s / step): the one place both detectors' shift comes from."""
    return (_LOG_REFERENCE - log_step) / _LN10


def decades_for_step(step_s: float) -> float:
    """The shift for a fixed step (holt_winters)."""
    return _decades(_log_step(step_s))


class SamplingStep:
    """The series' sampling step, learned from its timestamps."""

    __slots__ = ("gap", "gaps", "last", "log_gap", "log_step", "shift")

    def __init__(self) -> None:
        self.gaps = 0
        self.log_step = _LOG_REFERENCE
        self.last = -math.inf
        self.gap = self.log_gap = 0.0  # the last gap and its clamped log (a cache)
        self.shift = _decades(self.log_step)  # (a cache: the step settles on regular sampling)

    def decades(self, ts: float) -> float:
        """Learn the timestamp `ts` (epoch seconds), then log10(300 s / step)."""
        gap = ts - self.last
        if gap > 0.0:
            if gap < _INF:  # the first point has no gap
                # a plain mean of the first gaps, then exponentially weighted
                gaps = self.gaps
                rate = 1.0 / (gaps + 1) if gaps < _PLAIN else STEP_RATE
                if gap != self.gap:  # regular sampling repeats its gap: one log less a point
                    self.gap, self.log_gap = gap, _log_step(gap)
                log_step = self.log_step
                learned = log_step + rate * (self.log_gap - log_step)
                if learned != log_step:
                    self.log_step = learned
                    self.shift = _decades(learned)
                self.gaps = gaps + 1
            self.last = ts
        # no gap seen yet: log_step is the reference step's, so no shift
        return self.shift

    def dump(self) -> bytes:
        return struct.pack(_FORMAT, self.gaps, self.log_step, self.last)

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[SamplingStep, int]:
        s = cls()
        gaps, s.log_step, s.last = struct.unpack_from(_FORMAT, data, offset)
        s.gaps = int(gaps)
        s.shift = _decades(s.log_step)
        return s, offset + struct.calcsize(_FORMAT)
