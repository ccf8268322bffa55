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


class Recent:
    __slots__ = ("hi", "lo", "newest")

    def __init__(self) -> None:
        self.lo = array("d", [math.nan]) * SLOTS
        self.hi = array("d", [math.nan]) * SLOTS
        self.newest = -1  # the newest slot's number since the epoch; -1: none yet

    def add(self, value: float, ts: float) -> None:
        slot = int(ts // SLOT_S)
        if slot != self.newest and not self._move(slot):
            return  # older than the ring: a late sample changes nothing shown
        i = slot % SLOTS
        lo, hi = self.lo, self.hi
        if not lo[i] <= value:  # also when the slot is empty (NaN)
            lo[i] = value
        if not hi[i] >= value:
            hi[i] = value

    def _move(self, slot: int) -> bool:
        """Make `slot` the newest, emptying the slots it passes; False if it is too old."""
        newest = self.newest
        if slot < newest:
            return slot > newest - SLOTS
        lo, hi = self.lo, self.hi
        for s in range(max(newest + 1, slot - SLOTS + 1), slot + 1):
            lo[s % SLOTS] = hi[s % SLOTS] = math.nan
        self.newest = slot
        return True

    def values(self) -> list[float | None]:
        """Oldest to newest slot: each slot's low or high, whichever strays further from
        the middle of the whole picture (so a spike shows as a spike, a dip as a dip);
        None where the slot saw no sample."""
        if self.newest < 0:
            return []
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
        return struct.pack(_FORMAT, self.newest, *self.lo, *self.hi)

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Recent, int]:
        r = cls()
        fields = struct.unpack_from(_FORMAT, data, offset)
        r.newest = fields[0]
        r.lo = array("d", fields[1 : 1 + SLOTS])
        r.hi = array("d", fields[1 + SLOTS :])
        return r, offset + struct.calcsize(_FORMAT)

    def memory_bytes(self) -> int:
        return 2 * (64 + 8 * SLOTS) + 80
