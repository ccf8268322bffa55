"""The `holt_winters` detector: river's Holt-Winters forecast, residuals calibrated.

river.time_series.HoltWinters predicts the next value (level + trend + a seasonal
profile whose period is detected from the timestamps: the median sampling step of
the first points, so 5-minute data gets a 288-point day and hourly data a 24-point
day). The raw surprise is the absolute forecast error in units of the recent error
spread; `calibration` turns it into a score and, as in `likelihood`, the point scores
the larger of that and the value-novelty surprise (`novelty`).

Wrapping river where its stock behaviour is unusable here:
- its additive seasonal initialisation divides by the mean level (river 0.26), so an
  all-zero start raises ZeroDivisionError: we initialise the components ourselves;
- it keeps no error variance, so it cannot say how surprising a miss is: we do;
- its state is Python deques: we checkpoint the numbers (struct, versioned), never a
  pickle, and refuse seasonal periods whose state would exceed MAX_PERIOD floats.
"""

from __future__ import annotations

import itertools
import math
import statistics
import struct
from datetime import datetime

from river import time_series

from processors.anomaly.calibration import SETTLE, Calibrator, Episode, shifted
from processors.anomaly.novelty import Novelty
from processors.anomaly.timescale import decades_for_step

ALPHA, BETA, GAMMA = 0.3, 0.05, 0.3  # textbook-moderate smoothing, not tuned per file
FAST = 0.05  # error spread: ~20 points
SLOW_SPREAD = 0.002
CLIP = 8.0
MAX_SURPRISE = 50.0
PROBE = 12  # points whose timestamps decide the sampling period
MAX_PERIOD = 288  # season floats kept: a 5-minute day, ~16 KB in river's deques
_SEASON_SECONDS = {"none": 0, "daily": 86_400, "weekly": 7 * 86_400}
_VERSION = 4  # 3: the rating's shift in decades follows `last`; 4: two-stretch episode
# version, period + 1, n_probe, n_first, n_level, n_trend << 16 | n_season, initialised
_HEAD = "<HIIIIIB"
_NUMBERS = "<q4d"  # n, err_v, slow_v, last, shift


def season_period(step_s: float, season: str) -> int:
    """Points per season for this sampling step; 0 (no season) when out of bounds."""
    for name in (season, "daily") if season == "weekly" else (season,):
        seconds = _SEASON_SECONDS.get(name, 0)
        if seconds and step_s > 0:
            period = round(seconds / step_s)
            if 4 <= period <= MAX_PERIOD:
                return period
    return 0


# The probe, and river's first values, of every series whose model is initialised: one
# shared empty list, because a list of its own would cost 56 B of a 288-point season's
# 16 KiB for as long as the series lives (nothing appends to either once initialised).
_NO_PROBE: list[float] = []


class _HoltWinters(time_series.HoltWinters):
    """river's HoltWinters with an additive initialisation that tolerates zero levels."""

    def learn_one(self, y: float, x: object = None) -> None:
        if self._initialized or len(self._first_values) + 1 < max(2, self.seasonality):
            super().learn_one(y)  # type: ignore[no-untyped-call]
            return
        first = [*self._first_values, y]
        level = statistics.fmean(first)
        self.level.append(level)
        if self.trend is not None:
            self.trend.append((first[-1] - first[0]) / max(len(first) - 1, 1))
        if self.season is not None:
            self.season.extend(v - level for v in first)
        self._first_values = _NO_PROBE  # river appends to it only before initialising
        self._initialized = True


def _model(period: int) -> _HoltWinters:
    if period:
        return _HoltWinters(alpha=ALPHA, beta=BETA, gamma=GAMMA, seasonality=period)  # type: ignore[no-untyped-call]
    return _HoltWinters(alpha=ALPHA, beta=BETA)  # type: ignore[no-untyped-call]


class HoltWintersDetector:
    __slots__ = (
        "cal",
        "episode",
        "err_v",
        "last",
        "model",
        "n",
        "novelty",
        "probe",
        "season",
        "shift",
        "slow_v",
    )

    def __init__(self, season: str) -> None:
        self.season = season
        self.n = 0
        self.probe: list[float] = []  # epoch seconds, then values, until the period is known
        self.model: _HoltWinters | None = None
        self.err_v = 0.0
        self.slow_v = 0.0
        self.last = 0.0  # the forecast until river's model is initialised
        self.cal = Calibrator()
        self.novelty = Novelty()
        self.episode = Episode()
        # decades of the per-unit-of-time rating (timescale.py), fixed with the period:
        # one float, not a SamplingStep, keeps a 288-point season within 16 KiB
        self.shift = 0.0

    def _forecast(self) -> float:
        if self.model is None or not self.model._initialized:
            return self.last
        return float(self.model.forecast(horizon=1)[0])  # type: ignore[no-untyped-call]

    def score(
        self, value: float, at: datetime, ts: float | None = None
    ) -> tuple[float, float, float, float]:
        expected = self._forecast()
        spread = math.sqrt(max(self.err_v, self.slow_v))
        floor = 1e-3 * abs(expected) + 1e-9
        raw = min(abs(value - expected) / max(spread, floor), MAX_SURPRISE) if self.n else 0.0
        # the first points only teach the model its spread: their surprise means nothing
        other = self.novelty.update(value, self.n >= SETTLE)
        if self.n >= SETTLE:
            calibrated = shifted(max(self.cal.calibrate(raw), other), self.shift)
            episode = self.episode.step(calibrated)
        else:
            episode = calibrated = 0.0
        # the spread learns a clipped error, so one outlier does not hide its episode
        err = min(abs(value - expected), CLIP * max(spread, floor) if self.n > SETTLE else math.inf)
        if self.n:
            self.err_v = (1.0 - FAST) * self.err_v + FAST * err * err
            self.slow_v = (1.0 - SLOW_SPREAD) * self.slow_v + SLOW_SPREAD * err * err
        self._learn(value, at)
        self.last = value
        self.n += 1
        return episode, calibrated, expected, spread

    def _learn(self, value: float, at: datetime) -> None:
        if self.model is not None:
            self.model.learn_one(value)
            return
        # the first PROBE points are held (timestamp, value) to find the sampling step
        self.probe += [at.timestamp(), value]
        if len(self.probe) < 2 * PROBE:
            return
        times, values = self.probe[0::2], self.probe[1::2]
        step = statistics.median(abs(b - a) for a, b in itertools.pairwise(times))
        self.model = _model(season_period(step, self.season))
        self.shift = decades_for_step(step)
        for v in values:
            self.model.learn_one(v)
        self.probe = _NO_PROBE

    def memory_bytes(self) -> int:
        m = self.model
        held = len(self.probe) + (0 if m is None else len(m._first_values) + len(m.season or ()))
        # river's model and ours (~6.4 KB, tracemalloc) + 32 B a held Python float
        return 6400 + 32 * held + 2 * 8 * len(self.cal.bins)

    def dump(self) -> bytes:
        m = self.model
        period = -1 if m is None else m.seasonality
        first = [] if m is None else list(m._first_values)
        level = [] if m is None else list(m.level)
        trend = [] if m is None or m.trend is None else list(m.trend)
        season = [] if m is None or m.season is None else list(m.season)
        initialised = 0 if m is None else int(m._initialized)
        numbers = [*self.probe, *first, *level, *trend, *season]
        return (
            struct.pack(
                _HEAD,
                _VERSION,
                period + 1,
                len(self.probe),
                len(first),
                len(level),
                len(trend) << 16 | len(season),
                initialised,
            )
            + struct.pack(_NUMBERS, self.n, self.err_v, self.slow_v, self.last, self.shift)
            + struct.pack(f"<{len(numbers)}d", *numbers)
            + self.cal.dump()
            + self.novelty.dump()
            + self.episode.dump()
        )

    @classmethod
    def load(cls, season: str, data: bytes) -> HoltWintersDetector:
        version, period1, n_probe, n_first, n_level, packed, initialised = struct.unpack_from(
            _HEAD, data
        )
        if version != _VERSION:
            raise ValueError(f"unsupported holt_winters state version {version}")
        n_trend, n_season = packed >> 16, packed & 0xFFFF
        if n_season > MAX_PERIOD + 1 or n_first > MAX_PERIOD or n_probe > 2 * PROBE:
            raise ValueError("holt_winters state exceeds its bounds")
        offset = struct.calcsize(_HEAD)
        d = cls(season)
        n, d.err_v, d.slow_v, d.last, d.shift = struct.unpack_from(_NUMBERS, data, offset)
        d.n = int(n)
        offset += struct.calcsize(_NUMBERS)
        total = n_probe + n_first + n_level + n_trend + n_season
        numbers = list(struct.unpack_from(f"<{total}d", data, offset))
        offset += 8 * total
        d.probe = numbers[:n_probe] if n_probe or not period1 else _NO_PROBE
        if period1:
            m = d.model = _model(period1 - 1)
            i = n_probe
            m._first_values = numbers[i : i + n_first] if n_first or not initialised else _NO_PROBE
            i += n_first
            m.level.extend(numbers[i : i + n_level])
            i += n_level
            if m.trend is not None:
                m.trend.extend(numbers[i : i + n_trend])
            i += n_trend
            if m.season is not None:
                m.season.extend(numbers[i : i + n_season])
            m._initialized = bool(initialised)
        d.cal, offset = Calibrator.load(data, offset)
        d.novelty, offset = Novelty.load(data, offset)
        d.episode, _ = Episode.load(data, offset)
        return d
