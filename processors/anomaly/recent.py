"""The last hours of a series, kept for the page: what a responder looks at first.

A fixed ring of ten-minute slots, each holding the lowest and highest value seen in
it, whatever the sampling step: a 15-second scrape and a 5-minute one cost the same,
and a one-sample spike or dip survives in its slot (a mean would flatten it). An
hourly series fills one slot in six; the empty ones draw as gaps.
"""

from __future__ import annotations

import math
import struct
from array import array

SLOT_S = 600
SLOTS = 24  # four hours: a morning's shape, and long enough to see a level before it moved
_FORMAT = f"<q{2 * SLOTS}d"
_floor = math.floor
# the slot's bounds as floats: timestamps are, and float-int comparisons are not specialised
_SLOT_S = float(SLOT_S)


class Recent:
    __slots__ = ("end", "hi", "lo", "newest", "now_hi", "now_lo", "start")

    def __init__(self) -> None:
        self.lo = array("d", [math.nan]) * SLOTS
        self.hi = array("d", [math.nan]) * SLOTS
        self.newest = -1  # the newest slot's number since the epoch; -1: none yet
        # the newest slot's bounds and extremes, kept as plain floats until it ends: nearly
        # every sample lands in it, and this is the detector's hot path
        self.start, self.end = math.inf, -math.inf
        self.now_lo = self.now_hi = math.nan

    def add(self, value: float, ts: float) -> None:
        if self.start <= ts < self.end:
            if value < self.now_lo:
                self.now_lo = value
            if value > self.now_hi:
                self.now_hi = value
            return
        slot = _floor(ts // _SLOT_S)  # (an integral float: int() without the type call)
        newest = self.newest
        if slot > newest:
            if newest >= 0:
                i = newest % SLOTS
                self.lo[i], self.hi[i] = self.now_lo, self.now_hi
                if slot > newest + 1:  # slots that saw no sample (the new one: its now_*)
                    lo, hi = self.lo, self.hi
                    for s in range(max(newest + 1, slot - SLOTS + 1), slot):
                        lo[s % SLOTS] = hi[s % SLOTS] = math.nan
            self.newest = slot
            start = slot * _SLOT_S
            self.start, self.end = start, start + _SLOT_S
            self.now_lo = self.now_hi = value
        elif slot == newest:  # on a slot's edge, as the float division rounds it
            self.now_lo, self.now_hi = min(self.now_lo, value), max(self.now_hi, value)
        elif slot > newest - SLOTS:  # a late sample of an earlier slot still shown
            i = slot % SLOTS
            if not self.lo[i] <= value:  # also when the slot is empty (NaN)
                self.lo[i] = value
            if not self.hi[i] >= value:
                self.hi[i] = value

    def _flush(self) -> None:
        """The newest slot's extremes into the ring (values and checkpoints read it)."""
        if self.newest >= 0:
            i = self.newest % SLOTS
            self.lo[i], self.hi[i] = self.now_lo, self.now_hi

    def values(self) -> list[float | None]:
        """Oldest to newest slot: each slot's low or high, whichever strays further from
        the middle of the whole picture (so a spike shows as a spike, a dip as a dip);
        None where the slot saw no sample."""
        if self.newest < 0:
            return []
        self._flush()
        order = [(self.newest + 1 + k) % SLOTS for k in range(SLOTS)]
        seen = [(self.lo[i], self.hi[i]) for i in order]
        mids = sorted((lo + hi) / 2 for lo, hi in seen if lo == lo)
        if not mids:
            return []
        centre = mids[len(mids) // 2]
        out: list[float | None] = []
        for lo, hi in seen:
            if lo != lo:
                out.append(None)
            else:
                out.append(hi if hi - centre >= centre - lo else lo)
        return out

    def dump(self) -> bytes:
        self._flush()
        return struct.pack(_FORMAT, self.newest, *self.lo, *self.hi)

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Recent, int]:
        r = cls()
        fields = struct.unpack_from(_FORMAT, data, offset)
        r.newest = fields[0]
        r.lo = array("d", fields[1 : 1 + SLOTS])
        r.hi = array("d", fields[1 + SLOTS :])
        if r.newest >= 0:
            i = r.newest % SLOTS
            r.start = r.newest * _SLOT_S
            r.end = r.start + _SLOT_S
            r.now_lo, r.now_hi = r.lo[i], r.hi[i]
        return r, offset + struct.calcsize(_FORMAT)

    def memory_bytes(self) -> int:
        return 2 * (64 + 8 * SLOTS) + 200
