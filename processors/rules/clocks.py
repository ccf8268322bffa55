"""Per-series event-time clocks: how far each series feeding an engine has got, so a
window can close as soon as every live series has moved past its end instead of
waiting for `allowed_lateness` behind the newest sample.

A series' frontier is the newest event time it sent while it has always been in
order, and that minus `allowed_lateness` once it has sent a sample older than one
before it (for good: one such sample is enough to expect more). A series that has
sent nothing for twice its own sampling interval (or for `allowed_lateness` before
it has an interval) is idle and holds nothing back. The engine's closing watermark
is the smallest frontier of the live series (the partition watermark while new
series keep appearing: each may start as late as that allows), never below the
partition watermark
(`newest event time - allowed_lateness`) and never moving back.

Everything here is a function of the samples in their order: the clocks are
re-read when a sample moves the newest event time past `due`, never at advance()
time, so batch boundaries and a checkpoint change nothing.
"""

from __future__ import annotations

from typing import Any

# the shortest re-read interval: sub-second sampling would otherwise rescan every
# clock for each new timestamp
_MIN_STEP_S = 1.0
_NO_GAP = float("inf")
_NEVER = float("-inf")


class SeriesClock:
    """One series' newest event time, the one before it (their difference is its
    sampling interval; both are the float objects the feed shares across a scrape, so a
    clock allocates nothing per sample) and whether it has ever been out of order."""

    __slots__ = ("disordered", "hw", "prev")

    def __init__(self) -> None:
        self.hw = float("-inf")
        self.prev = float("-inf")
        self.disordered = False

    def tick(self, t: float) -> None:
        """What the engine's hot path does inline."""
        hw = self.hw
        if t > hw:
            self.prev = hw
            self.hw = t
        elif t < hw:
            self.disordered = True


class Clocks:
    """The clocks of one engine's series by series key (name and labels: the same
    whether or not a record key names the route) and the watermark they yield."""

    __slots__ = ("by_series", "due", "fresh", "lateness")

    def __init__(self, lateness: float) -> None:
        self.lateness = lateness
        self.by_series: dict[str, SeriesClock] = {}
        # the newest event time at which the clocks are next re-read
        self.due = float("-inf")
        # a series appeared since the last re-read: the set of series is not known yet
        self.fresh = True

    def get(self, series: str) -> SeriesClock:
        c = self.by_series.get(series)
        if c is None:
            c = self.by_series[series] = SeriesClock()
            self.fresh = True
        return c

    def closing(self, now: float, floor: float) -> float:
        """The watermark the live series allow at newest event time `now` (at least
        `floor`, the partition watermark); schedules the next re-read."""
        lateness = self.lateness
        # until a whole re-read interval passed without a new series, one may still
        # bring samples as old as the partition watermark allows
        low = floor if self.fresh else now
        self.fresh = False
        step = _NO_GAP
        for c in self.by_series.values():
            hw = c.hw
            gap = hw - c.prev  # inf before a second sample
            # idle: silent for twice its interval (no interval yet: for the lateness)
            if now - hw > (2.0 * gap if gap != _NO_GAP else lateness):
                continue
            frontier = hw - lateness if c.disordered else hw
            if frontier < low:
                low = frontier
            if gap < step:
                step = gap
        # about once per sampling interval of the fastest live series: each re-read
        # costs one pass over the clocks, paid by that interval's samples
        self.due = now + max(step if step != _NO_GAP else _MIN_STEP_S, _MIN_STEP_S)
        return low if low > floor else floor

    def evict(self, before: float) -> bool:
        """Forget series silent since before `before`; True when any was."""
        stale = [k for k, c in self.by_series.items() if c.hw < before]
        for k in stale:
            del self.by_series[k]
        return bool(stale)

    def dump(self) -> list[list[Any]]:
        return [
            [k, c.hw, c.prev if c.prev != _NEVER else None, c.disordered]
            for k, c in self.by_series.items()
        ]

    def load(self, doc: list[list[Any]], due: float, fresh: bool) -> None:
        self.by_series.clear()
        for key, hw, prev, disordered in doc:
            c = SeriesClock()
            c.hw = float(hw)
            c.prev = _NEVER if prev is None else float(prev)
            c.disordered = bool(disordered)
            self.by_series[key] = c
        self.due = due
        self.fresh = fresh
