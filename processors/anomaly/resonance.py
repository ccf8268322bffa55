"""Window novelty by adaptive resonance: has the series ever had a stretch shaped like this?

The other surprises look at one point: its distance from a forecast, or from the
series' long-run distribution. This one looks at the shape of the last few points:
the window of the last WINDOW values is a point in a WINDOW-dimensional space, and the
series' past windows are summarised by a few categories, each a box in that space
(fuzzy ART with complement coding: the smallest box that holds every window the
category has learned). A window resonates with a box when the box, grown to hold it,
would still be narrow enough: on average at most 1 - VIGILANCE of the series' range
per dimension. The box needing the least growth learns the window (fast learning: the
box grows to hold it). A window that resonates with no box is news: it starts a
category of its own, and its surprise is how far the nearest box is beyond the
vigilance, in units of the vigilance's tolerance (0 when some box resonates), which
is calibrated against the series' own history like the other surprises
(`calibration`): a series whose windows keep opening categories (noise wider than a
box may be) makes news of that kind ordinary.

Nothing is known before a row arrives: the range is the series' own, an upper and a
lower envelope that a new extreme widens at once and that close in on the values by
RANGE_MEMORY of the gap a point (~10,000 points, the value novelty's memory: on a
series of a few thousand points one spike sets the range for the whole series, as a
file's min/max would). A point is scored against the range and the boxes of the points
before it, then learned. Boxes are kept in the series' own units, so a range that
widens later makes them relatively narrower instead of moving them.

Bounded: at most BOXES categories (the least recently resonating one is replaced),
kept as flat arrays. The box tried first is the last one that resonated (a slowly
moving series stays in its box); the others are skipped when a bound from their
sums alone shows they cannot beat the best so far.
"""

from __future__ import annotations

import struct
from array import array

from processors.anomaly.calibration import Calibrator

WINDOW = 8  # the last 8 values: 40 minutes of 5-minute data, a shape, not a trend
BOXES = 32  # categories at most
VIGILANCE = 0.9  # a box spans on average at most a tenth of the range per dimension
RANGE_MEMORY = 1e-4  # the envelopes close in on the values by this share of the gap a point
MAX_SURPRISE = 50.0
# False: the surprise is scored as it is, raw / (raw + 1), not against the series' own
# history: news is news in units of the series' range, however often it came before
CALIBRATE = True
# "haar": a box lives in the space of the window's Haar wavelet coefficients (its mean,
# and the half-differences of its halves, quarters, pairs) instead of its values: noise
# spreads over the details while a change of level or of shape gathers in a few
FEATURES = "haar"
# the vigilance adapts: each time a category must be replaced (every box in use) the
# tolerance widens by 1 / BOXES, so a series whose windows need more categories than
# there are boxes is told in coarser ones instead of churning through them
ADAPT = True
# True: the first box (the last to resonate, then in turn) that resonates learns the
# window, not the one needing the least growth: the search ends at the first resonance
FIRST_FIT = False
MASK = True  # a novel window masks the next WINDOW - 1, which hold the same new values
_HEAD = "<qqii3d"  # points, last box, boxes, masked windows, top, bottom, tolerance


def haar(win: list[float]) -> list[float]:
    """The window's Haar coefficients, coarsest first: its mean, then the half-differences
    of its halves, of its quarters, of its pairs (a power-of-two window)."""
    if len(win) == 8:
        # unrolled: the hot path
        x0, x1, x2, x3, x4, x5, x6, x7 = win
        a0, a1, a2, a3 = x0 + x1, x2 + x3, x4 + x5, x6 + x7
        b0, b1 = a0 + a1, a2 + a3
        return [
            0.125 * (b0 + b1),
            0.125 * (b1 - b0),
            0.25 * (a1 - a0),
            0.25 * (a3 - a2),
            0.5 * (x1 - x0),
            0.5 * (x3 - x2),
            0.5 * (x5 - x4),
            0.5 * (x7 - x6),
        ]
    out: list[float] = []
    level = win
    while len(level) > 1:
        pairs = range(0, len(level), 2)
        out[:0] = [0.5 * (level[i + 1] - level[i]) for i in pairs]
        level = [0.5 * (level[i] + level[i + 1]) for i in pairs]
    return level + out


class Resonance:
    """Per-series state: the last WINDOW values, the range, up to BOXES boxes, a calibrator."""

    __slots__ = (
        "bottom",
        "cal",
        "familiar",
        "hi",
        "last",
        "lo",
        "masked",
        "n",
        "shi",
        "slo",
        "tolerance",
        "top",
        "used",
        "win",
    )

    def __init__(self) -> None:
        self.n = 0
        self.win: list[float] = []
        self.top = 0.0
        self.bottom = 0.0
        # box b holds dimensions [b * WINDOW, (b + 1) * WINDOW) of lo and hi
        self.lo = array("d")
        self.hi = array("d")
        self.slo = array("d")  # sum of each box's lower edges
        self.shi = array("d")  # ... of its upper edges
        self.used = array("q")  # the point at which each box last resonated
        self.last = 0  # the box that resonated last
        self.masked = 0  # windows still holding the values of the last news
        self.familiar = False  # the last window resonated with a box
        self.tolerance = 1.0 - VIGILANCE  # a box's mean width, in ranges, at most
        self.cal = Calibrator()

    def update(self, value: float, scored: bool) -> float:
        """The calibrated novelty of the window ending at `value` (0.0 unless `scored`)."""
        n = self.n
        self.n = n + 1
        top, bottom = self.top, self.bottom
        if n == 0:
            top = bottom = value
        win = self.win
        win.append(value)
        if len(win) > WINDOW:
            del win[0]
        score = 0.0
        if len(win) == WINDOW:
            width = top - bottom
            scale = 1e-3 * (abs(top) if abs(top) > abs(bottom) else abs(bottom)) + 1e-9
            width = width if width > scale else scale
            x = haar(win) if FEATURES == "haar" else win
            raw = self._learn(x, n, self.tolerance * WINDOW * width)
            self.familiar = raw == 0.0
            if self.masked:
                # the next windows hold the same new values: the same news, told once
                self.masked -= 1
                raw = 0.0
            elif raw > 0.0 and MASK:
                self.masked = WINDOW - 1
            if scored:
                if CALIBRATE:
                    score = self.cal.calibrate(raw if raw < MAX_SURPRISE else MAX_SURPRISE)
                else:
                    score = raw / (raw + 1.0)
        # the envelopes: a new extreme widens the range at once; otherwise they close in
        if value > top:
            top = value
        else:
            top -= RANGE_MEMORY * (top - value)
        if value < bottom:
            bottom = value
        else:
            bottom += RANGE_MEMORY * (value - bottom)
        self.top, self.bottom = top, bottom
        return score

    def _learn(self, win: list[float], n: int, limit: float) -> float:
        """Resonate with the best box and grow it, or open a box: the raw surprise."""
        lo, hi, slo, shi = self.lo, self.hi, self.slo, self.shi
        boxes = len(slo)
        sx = sum(win)
        best, best_b = float("inf"), -1
        if boxes:
            b = self.last
            j = b * WINDOW
            top = sum(map(max, hi[j : j + WINDOW], win))
            floor = sum(map(min, lo[j : j + WINDOW], win))
            if top == shi[b] and floor == slo[b]:
                # inside the box that resonated last (most windows of a steady series):
                # it resonates and learns nothing, and no box can need less growth
                self.used[b] = n
                return 0.0
            best, best_b = top - floor, b
            x0 = win[0]
            for k in range(boxes):
                # the growth a box needs is at least its size plus how far the window's
                # sum lies outside the box's sums, or its first coordinate outside the
                # box's first side (the window's mean, with Haar features): bounds from a
                # few numbers, before the dimensions are read
                low, high = slo[k], shi[k]
                bound = high - low + (sx - high if sx > high else low - sx if sx < low else 0.0)
                if bound >= best or k == b:
                    continue
                j = k * WINDOW
                edge = lo[j]
                if x0 < edge:
                    if high - low + edge - x0 >= best:
                        continue
                else:
                    edge = hi[j]
                    if x0 > edge and high - low + x0 - edge >= best:
                        continue
                grown = sum(map(max, hi[j : j + WINDOW], win)) - sum(
                    map(min, lo[j : j + WINDOW], win)
                )
                if grown < best:
                    best, best_b = grown, k
                    if FIRST_FIT and grown <= limit:
                        break
                    if grown <= high - low:
                        break  # inside this box: nothing can need less growth
        # a window inside a box resonates even if the range has narrowed since the box grew
        if best_b >= 0 and (best <= limit or best <= shi[best_b] - slo[best_b]):
            b = best_b
            j = b * WINDOW
            lo[j : j + WINDOW] = array("d", map(min, lo[j : j + WINDOW], win))
            hi[j : j + WINDOW] = array("d", map(max, hi[j : j + WINDOW], win))
            slo[b] = sum(lo[j : j + WINDOW])
            shi[b] = sum(hi[j : j + WINDOW])
            self.used[b] = n
            self.last = b
            return 0.0
        raw = best / limit - 1.0 if best_b >= 0 else 0.0
        # a category of its own, in place of the least recently resonating one if full
        point = array("d", win)
        if boxes < BOXES:
            b = boxes
            lo.extend(point)
            hi.extend(point)
            slo.append(sx)
            shi.append(sx)
            self.used.append(n)
        else:
            used = self.used
            b = min(range(boxes), key=used.__getitem__)
            j = b * WINDOW
            lo[j : j + WINDOW] = point
            hi[j : j + WINDOW] = point
            slo[b] = shi[b] = sx
            used[b] = n
            if ADAPT:
                self.tolerance *= 1.0 + 1.0 / BOXES
        self.last = b
        return raw

    def memory_bytes(self) -> int:
        # objects (~700 B), the boxes (2 x 8 B a dimension, 3 x 8 B a box), a histogram
        return 700 + len(self.slo) * (16 * WINDOW + 24) + 8 * len(self.cal.bins) + 300

    def dump(self) -> bytes:
        boxes = len(self.slo)
        head = struct.pack(
            _HEAD, self.n, self.last, boxes, self.masked, self.top, self.bottom, self.tolerance
        )
        win = struct.pack(f"<B{len(self.win)}d", len(self.win), *self.win)
        return (
            head
            + win
            + self.lo.tobytes()
            + self.hi.tobytes()
            + self.used.tobytes()
            + self.cal.dump()
        )

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Resonance, int]:
        r = cls()
        n, last, boxes, r.masked, r.top, r.bottom, r.tolerance = struct.unpack_from(
            _HEAD, data, offset
        )
        r.n, r.last = int(n), int(last)
        offset += struct.calcsize(_HEAD)
        (k,) = struct.unpack_from("<B", data, offset)
        r.win = list(struct.unpack_from(f"<{k}d", data, offset + 1))
        offset += 1 + 8 * k
        size = 8 * boxes * WINDOW
        r.lo = array("d", data[offset : offset + size])
        r.hi = array("d", data[offset + size : offset + 2 * size])
        offset += 2 * size
        r.used = array("q", data[offset : offset + 8 * boxes])
        offset += 8 * boxes
        for b in range(boxes):
            j = b * WINDOW
            r.slo.append(sum(r.lo[j : j + WINDOW]))
            r.shi.append(sum(r.hi[j : j + WINDOW]))
        r.cal, offset = Calibrator.load(data, offset)
        return r, offset
