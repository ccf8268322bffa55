"""The `likelihood` detector: two surprises, each turned into a calibrated tail probability.

Prediction: an exponentially weighted level and spread of the value, one per
time-of-day slot for daily or weekly seasonality (slots follow the wall clock of
`at`, so they do not depend on the sampling period). The raw surprise of a point is
its distance from the slot's level in units of spread, where the spread never falls
below the series' slow noise level (a quiet hour must not make every wiggle
infinitely unlikely) nor below 0.1% of the level (flat and all-zero starts).
`calibration` turns the surprise into a score.

A weekly season keeps both: 168 hour-of-week slots and the 24 hour-of-day slots
they start from. An hour of the week seen for the first time starts from the same
hour of day (learned every day) instead of from an unrelated slot, and then learns
its own level; so a series with less than a week of history, or none of a weekly
pattern, is forecast as with a daily season, and weekday/weekend differences are
learned where they exist.

Two more surprises look at the value alone (`novelty`: its distance from the series'
long-run mean; `density`: how rarely the series has been where it is), each calibrated
on its own; the point scores the largest, rated per unit of time (`timescale`: a
threshold means the same pages per day whatever the sampling step).

Everything adapts: after a level shift the new normal becomes the prediction within
a few dozen points, so one change is reported as one episode, not forever.
Test-then-train: each point is scored against the model of the points before it.

Hot path in plain floats (~8 us per point in CPython): river's models cost 10x more
per point through their generic interfaces, and the issue asks for >= 100k points/s
per core. river earns its place in the `holt_winters` detector (see forecast.py).
"""

from __future__ import annotations

import math
import struct
from array import array
from datetime import datetime

from processors.anomaly.calibration import DECADES, SETTLE, Calibrator, Episode, shifted
from processors.anomaly.density import Density
from processors.anomaly.novelty import Novelty
from processors.anomaly.timescale import SamplingStep

# One configuration for every series, chosen for reasons, not per file:
FAST = 0.05  # level/spread: ~20 points of memory, so a level shift is learned quickly
SLOW_SPREAD = 0.002  # floor of the spread: remembers the quiet noise level (~500 points)
CLIP = 8.0  # errors beyond 8 spreads teach the spread only 8 spreads
MAX_SURPRISE = 50.0  # a surprise is capped so one wild point cannot wreck the calibration
SHORT = 0.1  # short time scale: the mean surprise of the last ~10 points, an alert's
# debounce window (HTM's anomaly likelihood averages its last 10 scores the same way)
# the distribution-free value novelty (density.py) beside the Gaussian one: better out of
# fold (docs/anomaly-evaluation.md); a switch, so that the benchmark can measure without it
DENSITY = True

_KEEP, _SLOW_KEEP = 1.0 - FAST, 1.0 - SLOW_SPREAD
_sqrt = math.sqrt

_VERSION = 8  # 4: weekly keeps its 24 hour-of-day slots after the 168 hour-of-week ones;
# 5: the sampling step follows the episode; 6: the episode remembers two stretches' peaks;
# 7: the short time scale (its mean surprise and calibration) follows the sampling step;
# 8: the value density follows the short time scale (a checkpoint written with DENSITY
# off, a benchmark variant, has none and loads only with it off)
_HEAD = "<HI"
_BODY = "<qd"  # n, slow_v
_SHORT = "<d"  # the short time scale's mean surprise


def slots_for(season: str) -> int:
    # weekly: 168 hour-of-week slots, then the 24 hour-of-day slots they start from
    return {"daily": 24, "weekly": 168 + 24}.get(season, 1)


def slot_of(at: datetime, season: str) -> tuple[int, int]:
    """The slot of `at` and, for a weekly season, the hour-of-day slot it starts from (-1)."""
    if season == "weekly":
        hour = at.hour
        return at.weekday() * 24 + hour, 168 + hour
    if season == "daily":
        return at.hour, -1
    return 0, -1


class LikelihoodDetector:
    """Per-series state: a handful of floats plus (level, spread, count) per season slot."""

    __slots__ = (
        "cal",
        "density",
        "episode",
        "h_mean",
        "h_seen",
        "h_var",
        "latest",
        "mean",
        "n",
        "novelty",
        "season",
        "seen",
        "short",
        "short_cal",
        "slots",
        "slow_v",
        "step",
        "var",
    )

    def __init__(self, season: str) -> None:
        self.season = season
        self.n = 0
        # (level, spread^2, points seen) per slot, flat doubles: 24 bytes a slot, so a
        # weekly season (192 slots) stays ~4.6 KiB where lists of floats would take ~25 KiB
        self.slots = array("d", bytes(24 * slots_for(season)))
        # the slot of the latest point (its offset in `slots`, -1: none) and its values,
        # and those of its hour of day, as plain floats until a point lands in another
        # slot: consecutive points share their hour, and an array element costs several
        # times an attribute to read and to write (`_enter`, `_flush`)
        self.latest = -1
        self.mean = self.var = self.seen = self.h_mean = self.h_var = self.h_seen = 0.0
        self.slow_v = 0.0
        self.cal = Calibrator()  # of the prediction error
        self.novelty = Novelty()
        self.episode = Episode()
        self.step = SamplingStep()
        self.short = 0.0
        self.short_cal = Calibrator()
        self.density = Density() if DENSITY else None

    def _flush(self) -> None:
        """The latest slot's values into `slots` (for another slot, or a checkpoint)."""
        i = self.latest
        if i >= 0:
            slots = self.slots
            slots[i], slots[i + 1], slots[i + 2] = self.mean, self.var, self.seen
            p = self.hour_of_day(i)
            if p >= 0:
                slots[p], slots[p + 1], slots[p + 2] = self.h_mean, self.h_var, self.h_seen

    def _enter(self, i: int) -> None:
        """Make slot offset `i` (and its hour of day) the latest."""
        self._flush()
        slots = self.slots
        self.latest = i
        self.mean, self.var, self.seen = slots[i], slots[i + 1], slots[i + 2]
        p = self.hour_of_day(i)
        if p >= 0:
            self.h_mean, self.h_var, self.h_seen = slots[p], slots[p + 1], slots[p + 2]

    def hour_of_day(self, i: int) -> int:
        """The offset of the hour-of-day slot that slot offset `i` starts from (-1: none)."""
        return 3 * (168 + i // 3 % 24) if self.season == "weekly" else -1

    def score(
        self, value: float, at: datetime, ts: float | None = None
    ) -> tuple[float, float, float, float]:
        """Score `value`, then learn it: (episode score, calibrated score, expected, spread).

        `ts` is `at` in epoch seconds when the caller has it (an aware datetime's
        timestamp() is not free on this path)."""
        weekly = self.season == "weekly"
        # (slot_of, inlined for the default season)
        i = 3 * (at.weekday() * 24 + at.hour if weekly else slot_of(at, self.season)[0])
        if i != self.latest:
            self._enter(i)
        mean, var, seen = self.mean, self.var, self.seen
        n = self.n
        if seen < 1.0 and n > 0:
            if weekly and self.h_seen >= 1.0:
                # an hour of the week seen for the first time starts from its hour of day
                mean, var = self.h_mean, self.h_var
            else:
                # a season slot seen for the first time borrows the best-known slot (the
                # others are all in `slots`: the latest left it for this one)
                slots = self.slots
                donor = 3 * max(range(len(slots) // 3), key=lambda j: slots[3 * j + 2])
                mean, var = slots[donor], slots[donor + 1]
        slow_v = self.slow_v
        # (conditional expressions, not max/min/abs: this is the hot path)
        spread = _sqrt(var if var > slow_v else slow_v)
        floor = 1e-3 * (mean if mean >= 0.0 else -mean) + 1e-9
        unit = spread if spread > floor else floor
        delta = value - mean
        dv = delta if delta >= 0.0 else -delta
        raw = dv / unit if n > 0 else 0.0
        raw = raw if raw < MAX_SURPRISE else MAX_SURPRISE
        # the first points only teach the model its spread: their surprise means nothing
        novelty = self.novelty
        scored = n >= SETTLE
        density = self.density
        if density is None:
            other = novelty.update(value, scored)
        else:
            # before the novelty learns this value: the density reads its mean and spread
            dense = density.update(value, scored, novelty.n, novelty.m, novelty.v)
            other = novelty.update(value, scored)
            if dense > other:
                other = dense
        shift = self.step.decades(at.timestamp() if ts is None else ts)
        # the short time scale: a run of moderate surprises (a variance change, a slow
        # departure) is rarer as a run than any of its points is alone
        short = self.short
        short = short + SHORT * (raw - short) if n > 0 else 0.0
        self.short = short
        if scored:
            point = self.cal.calibrate(raw)
            point = point if point > other else other
            # shifted(point, shift), inlined
            d = DECADES * point / (1.0 - point) - shift if point > 0.0 else 0.0
            calibrated = d / (d + DECADES) if d > 0.0 else 0.0
            episode = self.episode.step(calibrated)
            # the run informs the alert (k of n rare points), not the episode: it lasts
            # ~10 points after a spike, which would re-detect the spike's own episode
            run = self.short_cal.calibrate(short)
            if run > point:
                calibrated = shifted(run, shift)
        else:
            episode = calibrated = 0.0

        # learn the value (after scoring it)
        if seen < 1.0 and n == 0:
            mean, delta, dv = value, 0.0, 0.0
        self.mean = mean + FAST * delta
        # the spread learns a clipped error: one outlier must not widen the band so much
        # that the rest of its episode looks normal (the level still moves by all of it)
        clip = CLIP * unit
        if n > SETTLE and dv > clip:
            dv = clip
        self.var = _KEEP * (var + FAST * dv * dv)
        self.seen = seen + 1.0  # (float literals: int-float arithmetic is not specialised)
        if weekly:
            # the hour-of-day slot learns every day's points, as in a daily season
            pm, pv, ps = self.h_mean, self.h_var, self.h_seen
            if ps < 1.0:
                pm, pv = mean, var
            pd = value - pm
            pdv = pd if pd >= 0.0 else -pd
            if n > SETTLE and pdv > clip:
                pdv = clip
            self.h_mean = pm + FAST * pd
            self.h_var = _KEEP * (pv + FAST * pdv * pdv)
            self.h_seen = ps + 1.0
        self.slow_v = _SLOW_KEEP * (slow_v + SLOW_SPREAD * dv * dv)
        self.n = n + 1
        return episode, calibrated, mean, spread

    def memory_bytes(self) -> int:
        # the objects themselves (~2.3 KB) + slots + three histograms; tracemalloc measures
        # 8.8 KB a weekly series with its last hours, 4.3 KB a daily one
        # (tests/unit/anomaly/test_detector.py)
        own = 2300 + self.slots.itemsize * len(self.slots) + 3 * 8 * len(self.cal.bins)
        return own + (self.density.memory_bytes() if self.density is not None else 0)

    def dump(self) -> bytes:
        self._flush()
        head = struct.pack(_HEAD, _VERSION, len(self.slots) // 3)
        body = struct.pack(_BODY, self.n, self.slow_v)
        flat = struct.pack(f"<{len(self.slots)}d", *self.slots)
        return (
            head
            + body
            + flat
            + self.cal.dump()
            + self.novelty.dump()
            + self.episode.dump()
            + self.step.dump()
            + struct.pack(_SHORT, self.short)
            + self.short_cal.dump()
            + (self.density.dump() if self.density is not None else b"")
        )

    @classmethod
    def load(cls, season: str, data: bytes) -> LikelihoodDetector:
        version, n_slots = struct.unpack_from(_HEAD, data)
        if version != _VERSION:
            raise ValueError(f"unsupported likelihood state version {version}")
        if n_slots != slots_for(season):
            raise ValueError(
                f"state has {n_slots} season slots, season {season!r} needs {slots_for(season)}"
            )
        offset = struct.calcsize(_HEAD)
        n, slow_v = struct.unpack_from(_BODY, data, offset)
        offset += struct.calcsize(_BODY)
        flat = struct.unpack_from(f"<{3 * n_slots}d", data, offset)
        offset += 24 * n_slots
        d = cls(season)
        d.n, d.slow_v = int(n), slow_v
        d.slots = array("d", flat)
        d.cal, offset = Calibrator.load(data, offset)
        d.novelty, offset = Novelty.load(data, offset)
        d.episode, offset = Episode.load(data, offset)
        d.step, offset = SamplingStep.load(data, offset)
        (d.short,) = struct.unpack_from(_SHORT, data, offset)
        d.short_cal, offset = Calibrator.load(data, offset + struct.calcsize(_SHORT))
        if d.density is not None:
            d.density, offset = Density.load(data, offset)
        return d
