"""Pattern novelty: how rarely the series' recent moves have followed each other this way.

The forecast surprise asks how far a value is from its seasonal forecast and the value
novelty how far it is from the long-run mean. Neither sees a value that is usual in
itself but arrives in an unusual order: an oscillation that stops, a change of shape.
Here each move (the change from the previous value) is quantised into one of LEVELS
bands in units of the series' own long-run spread (as `novelty` learns it: nothing is
known before the row arrives; SCALE picks other bands), and the last ORDER bands form
the context. A table of
counts, one byte per (context, band), says how often each band followed each context;
the raw surprise of a point is -ln of the estimated probability of its band given its
context, calibrated like the other surprises:

    p = (count(context, band) + 1/2) / (count(context) + 1)

A context seen for the first time says little (p = 1/2); a band never seen after a
context seen n times is about as rare as 1 in 2n. Counts saturate at 255: the whole
table is then halved, so the table follows a series whose patterns change and stays a
fixed size (4 KiB of counts, 1 KiB of row totals).

An experiment, off by default (`likelihood.CONTEXT_IN`): on NAB it did not separate
anomalies from the series' own ordinary rare moves (docs/anomaly.md).
"""

from __future__ import annotations

import math
import struct
from array import array

from processors.anomaly.calibration import Calibrator

LEVELS = 8  # bands of the quantised move (3 bits)
WIDTH = 1.0  # a band is one long-run spread of the values wide: 8 bands cover +-4 spreads
ORDER = 3  # bands of the context (3 x 3 bits: 512 contexts, 4,096 counts)
SCALE = "value"  # the band's unit: "value" (the values' long-run spread), "move" (the
# moves' own long-run spread, learned here) or "range" (the value itself, in LEVELS
# equal bands of the range of values seen so far, as CAD OSE bands the file's range)
MOVES = 0.001  # the moves' spread: ~1,000 points of memory
_log = math.log
_HALF = bytes(b >> 1 for b in range(256))
_FORMAT = "<qdqd2d"  # context code, previous value, moves seen, their mean square, range


class Context:
    __slots__ = ("cal", "code", "counts", "hi", "lo", "moves", "prev", "seen", "totals")

    def __init__(self) -> None:
        self.code = -1  # the last ORDER bands as a base-LEVELS number (-1: not yet)
        self.prev = math.nan
        self.moves = 0.0  # mean squared move
        self.seen = 0  # moves seen
        self.lo, self.hi = math.inf, -math.inf  # the range of values seen so far
        self.counts = bytearray(LEVELS ** (ORDER + 1))  # per (context, band)
        self.totals = array("H", bytes(2 * LEVELS**ORDER))  # per context: the sum of its row
        self.cal = Calibrator()

    def update(self, value: float, unit: float, scored: bool) -> float:
        """The calibrated pattern novelty of `value` (0.0 unless `scored`), then learn it.

        `unit` is the long-run spread of the values before this one.
        """
        prev = self.prev
        self.prev = value
        if SCALE == "range":
            lo, hi = self.lo, self.hi
            if value < lo:
                self.lo = value
            if value > hi:
                self.hi = value
            if prev != prev:
                return 0.0
            x = (value - lo) / (hi - lo) * LEVELS if hi > lo else 0.0
            return self._learn(0 if x < 0.0 else LEVELS - 1 if x >= LEVELS else int(x), scored)
        if prev != prev:  # the first value has no move
            return 0.0
        move = value - prev
        if SCALE == "move":
            # a plain mean of the first squared moves, then exponentially weighted
            k = self.seen
            ms = self.moves
            sd = math.sqrt(ms) if k else 1e-9
            rate = 1.0 / (k + 1)
            rate = rate if rate > MOVES else MOVES
            self.moves = ms + rate * (move * move - ms)
            self.seen = k + 1
            floor = 1e-3 * abs(value) + 1e-9
            unit = sd if sd > floor else floor
        x = move / (WIDTH * unit) + LEVELS / 2
        return self._learn(0 if x < 0.0 else LEVELS - 1 if x >= LEVELS else int(x), scored)

    def _learn(self, band: int, scored: bool) -> float:
        code = self.code
        score = 0.0
        if code >= 0:
            counts = self.counts
            totals = self.totals
            i = code * LEVELS + band
            c = counts[i]
            if scored:
                raw = -_log((c + 0.5) / (totals[code] + 1.0))
                score = self.cal.calibrate(raw if raw > 0.0 else 0.0)
            counts[i] = c + 1
            totals[code] += 1
            if c == 254:
                # halved, a row's total stays at least the sum of its halved counts (a few
                # more at most): a probability is never overstated
                self.counts = counts.translate(_HALF)
                self.totals = array("H", (t >> 1 for t in totals))
            code = (code * LEVELS + band) % len(totals)
        else:
            code = band  # the first band: the context fills up as the bands come
        self.code = code
        return score

    def memory_bytes(self) -> int:
        # the counts, the row totals, a calibrator and the objects (~0.8 KB)
        return 800 + len(self.counts) + self.totals.itemsize * len(self.totals)

    def dump(self) -> bytes:
        return (
            struct.pack(_FORMAT, self.code, self.prev, self.seen, self.moves, self.lo, self.hi)
            + bytes(self.counts)
            + struct.pack(f"<{len(self.totals)}H", *self.totals)
            + self.cal.dump()
        )

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Context, int]:
        c = cls()
        code, c.prev, seen, c.moves, c.lo, c.hi = struct.unpack_from(_FORMAT, data, offset)
        c.code, c.seen = int(code), int(seen)
        offset += struct.calcsize(_FORMAT)
        size = len(c.counts)
        c.counts = bytearray(data[offset : offset + size])
        offset += size
        n = len(c.totals)
        c.totals = array("H", struct.unpack_from(f"<{n}H", data, offset))
        c.cal, offset = Calibrator.load(data, offset + 2 * n)
        return c, offset
