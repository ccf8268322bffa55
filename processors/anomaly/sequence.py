"""A context-conditional forecast: the season forecast's usual next miss after its last misses.

The season forecast (`likelihood`) knows the wall clock, not the order of events: a
burst whose shape repeats, a spike that is always followed by a dip, a job that runs
every few minutes surprise it every time. This learns, per context of the last
CONTEXT misses, the usual next miss, so that the detector can ask whether the
sequence predicted a point that the season did not.

A miss is the signed forecast error in units of the forecast's current spread,
quantised into a symbol: its sign and its octave,

    |e| < 1 (noise, one symbol for either sign), 1-2, 2-4, 4-8, >= 8 spreads

Octaves because errors are judged by ratio (a 3-spread miss is not much like a
1-spread one, a 30-spread miss is much like a 40-spread one); 1 spread is where a miss
stops being ordinary noise; 8 spreads is where the forecast's spread stops learning
a miss in full (`likelihood.CLIP`), so everything beyond is one symbol and teaches this
table only 8 spreads. 9 symbols; a context of two is 81 table entries, indexed exactly.

Each entry keeps an exponentially weighted count and sum of the misses that followed
its context (FAST's ~20 occurrences of memory, the season slots' memory). Its expected
miss is sum / (count + 1): one pseudo-observation of "the season forecast was right",
so a context seen once predicts half of what followed it, one seen often nearly all.

Measurement switches (`benchmarks/nab_cv.py` variants): CONTEXT 1 or 3 (a context of
three is hashed into HASHED entries), SPREAD (scale by the context's own spread of the
next miss), LAG (a miss teaches its context late; not checkpointed), PERSIST (False: a
context may not explain a miss that continues its last one).
"""

from __future__ import annotations

import math
import struct
from array import array

CONTEXT = 2  # misses in a context
N_SYMBOLS = 9  # sign x octave: -4..4
HASHED = 64  # entries when N_SYMBOLS ** CONTEXT would be more than 81 (a 16-bit Fibonacci hash)
LAG = 0  # a miss teaches its context this many points late (calibration.LAG: the points
# of one burst or one departure do not explain each other); 0: at once
# whether a context may explain a miss that continues its last miss (a departure that
# lasts); False: only a reversal or a miss after noise is explained
PERSIST = True
SPREAD = False  # also keep each context's spread of the next miss, and scale by it
MEMORY = 0.05  # per occurrence of a context (likelihood.FAST)
CLIP = 8.0  # likelihood.CLIP
_KEEP = 1.0 - MEMORY
_FORMAT = "<I"  # the current context
_sqrt = math.sqrt


class Sequence:
    """Per series: 2-3 doubles per context, at most 81 contexts."""

    __slots__ = (
        "context",
        "exact",
        "hashed",
        "k",
        "lag",
        "pending",
        "persist",
        "spread",
        "stride",
        "table",
    )

    def __init__(self) -> None:
        self.exact: int = N_SYMBOLS**CONTEXT
        self.hashed = self.exact > 81
        self.spread = SPREAD
        self.stride = 3 if SPREAD else 2
        size = HASHED if self.hashed else self.exact
        # count, sum (, sum of squares) per context
        self.table: array[float] = array("d", bytes(8 * self.stride * size))
        # the last CONTEXT symbols, base N_SYMBOLS; a series starts as if after noise
        self.context = self.exact // 2
        self.lag = LAG
        self.persist = PERSIST
        self.k = 0
        # (entry offset, miss) per point not yet learned, -1: empty
        self.pending: array[float] = array("d", [-1.0, 0.0] * LAG)

    def surprise(self, e: float) -> float:
        """How far this miss (signed, in spreads) is from what its context expected, then learn it.

        The distance is in the forecast's spreads, or in the context's own spread of the
        next miss (`SPREAD`), whose prior is one pseudo-observation of one spread."""
        table = self.table
        ctx = self.context
        stride = self.stride
        i = stride * ((ctx * 40503 & 0xFFFF) >> 10 if self.hashed else ctx)
        count, total = table[i], table[i + 1]
        w = count + 1.0
        expected = total / w
        c: float = e - expected
        c = c if c >= 0.0 else -c
        if not self.persist:
            last = ctx % N_SYMBOLS - 4
            if (last > 0 and expected > 0.0) or (last < 0 and expected < 0.0):
                c = e if e >= 0.0 else -e
        a = e if e >= 0.0 else -e
        if a < 1.0:
            b = 0
        elif a < 2.0:
            b = 1
        elif a < 4.0:
            b = 2
        elif a < 8.0:
            b = 3
        else:
            b = 4
            e = CLIP if e > 0.0 else -CLIP
        if self.spread:
            v = (table[i + 2] + 1.0) / w - expected * expected
            c = c / _sqrt(v) if v > 0.0 else c
        symbol = 4 + b if e >= 0.0 else 4 - b
        self.context = (ctx * N_SYMBOLS + symbol) % self.exact
        if self.lag:
            pending = self.pending
            j = 2 * (self.k % self.lag)
            self.k += 1
            old, pending[j] = pending[j], float(i)
            old_e, pending[j + 1] = pending[j + 1], e
            if old < 0.0:
                return c
            i, e = int(old), old_e
        table[i] = _KEEP * table[i] + 1.0
        table[i + 1] = _KEEP * table[i + 1] + e
        if self.spread:
            table[i + 2] = _KEEP * table[i + 2] + e * e
        return c

    def memory_bytes(self) -> int:
        return 150 + 8 * len(self.table)

    def dump(self) -> bytes:
        return struct.pack(_FORMAT, self.context) + self.table.tobytes()

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Sequence, int]:
        s = cls()
        (s.context,) = struct.unpack_from(_FORMAT, data, offset)
        offset += struct.calcsize(_FORMAT)
        n = 8 * len(s.table)
        s.table = array("d", data[offset : offset + n])
        if s.context >= s.exact or len(s.table) != n // 8:
            raise ValueError("sequence state out of bounds")
        return s, offset + n
