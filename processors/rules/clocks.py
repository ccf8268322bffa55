"""Per-series event-time clocks: how far each series feeding an engine has got, so a
window can close as soon as every live series has moved past its end instead of
waiting for `allowed_lateness` behind the newest sample; and which tenant each series
belongs to, so a tenant's series are capped per engine.

A series' frontier is the newest event time it sent while it has always been in
order, and that minus `allowed_lateness` once it has sent a sample older than one
before it (for good: one such sample is enough to expect more). A series is idle and
holds nothing back once nothing new of it has arrived while the newest event time of
the partition moved on by twice its own sampling interval (by `allowed_lateness`
before it has an interval). Arrived, not dated: a series whose samples keep coming
but trail the others (a source that sends late, a slower pipeline) is alive, and is
waited for; judged by the age of its newest sample alone it would count as idle, the
windows would close past it and every sample it sends would then be refused as late.
The engine's closing watermark is the smallest frontier of the live series (the
partition watermark while new series keep appearing: each may start as late as that
allows), never below the partition watermark (`newest event time - allowed_lateness`)
and never moving back.

Everything here is a function of the samples in their order: the clocks are
re-read when a sample moves the newest event time past `due`, never at advance()
time, so batch boundaries and a checkpoint change nothing.

A clock is filed under a 56-bit digest of its tenant and series key rather than the
key itself: the key string cost more than the clock (about 100 bytes against 32 for
the digest's int), and the digest is stable across processes, so a checkpoint holds
it. Two series whose digests collide (about one chance in 10^5 with 10^6 series in
one engine) share one clock: its samples then look out of order, so the shared clock
falls back to the allowed lateness (the partition's behaviour) rather than closing a
window early, and the pair counts once towards the tenant's cap.
"""

from __future__ import annotations

from hashlib import blake2b
from sys import intern
from typing import Any

# the shortest re-read interval: sub-second sampling would otherwise rescan every
# clock for each new timestamp
_MIN_STEP_S = 1.0
_NO_GAP = float("inf")
_NEVER = float("-inf")
_DIGEST_BYTES = 7  # an int of two 30-bit digits: the smallest int object that holds it


def series_id(tenant: str, series: str) -> int:
    """The key a series' clock is filed under (see the module docstring)."""
    text = f"{tenant}\x00{series}"
    data = text.encode()
    digest = blake2b(data, digest_size=_DIGEST_BYTES).digest()
    return int.from_bytes(digest, "little")


class SeriesClock:
    """One series' newest event time, the one before it (their difference is its
    sampling interval; both are the float objects the feed shares across a scrape, so a
    clock allocates nothing per sample), whether it has ever been out of order and its
    tenant (one shared string per tenant). For the idle test: its newest event time as
    the last re-read saw it (`mark`) and the partition's newest event time at the
    re-read that first saw it move (`since`), set at re-reads, never per sample."""

    __slots__ = ("disordered", "hw", "mark", "prev", "since", "tenant")

    def __init__(self, tenant: str) -> None:
        self.hw = _NEVER
        self.prev = _NEVER
        self.mark = _NEVER
        self.since = _NEVER
        self.disordered = False
        self.tenant = tenant

    def tick(self, t: float) -> None:
        """What the engine's hot path does inline."""
        hw = self.hw
        if t > hw:
            self.prev = hw
            self.hw = t
        elif t < hw:
            self.disordered = True


class Clocks:
    """The clocks of one engine's series (name and labels: the same whether or not a
    record key names the route), the watermark they yield and how many series each
    tenant has."""

    __slots__ = ("by_series", "due", "fresh", "lateness", "per_tenant", "tenant_cap")

    def __init__(self, lateness: float, tenant_cap: int) -> None:
        self.lateness = lateness
        self.tenant_cap = tenant_cap
        self.by_series: dict[int, SeriesClock] = {}
        # series per tenant
        self.per_tenant: dict[str, int] = {}
        # the newest event time at which the clocks are next re-read
        self.due = _NEVER
        # a series appeared since the last re-read: the set of series is not known yet
        self.fresh = True

    def get(self, series: str, tenant: str) -> SeriesClock | None:
        """The series' clock, made on its first sample; None when it is new and its
        tenant already has `tenant_cap` series here (the sample is refused)."""
        key = series_id(tenant, series)
        c = self.by_series.get(key)
        if c is not None:
            return c
        n = self.per_tenant.get(tenant, 0)
        if n >= self.tenant_cap:
            return None
        shared = intern(tenant)  # one string per tenant, however many records named it
        self.per_tenant[shared] = n + 1
        c = self.by_series[key] = SeriesClock(shared)
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
            if hw != c.mark:  # something new arrived since the last re-read
                c.mark = hw
                c.since = now
            # idle: nothing new while the partition moved on by twice its interval (no
            # interval yet: by the lateness)
            elif now - c.since > (2.0 * gap if gap != _NO_GAP else lateness):
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
        per_tenant = self.per_tenant
        for k in stale:
            tenant = self.by_series.pop(k).tenant
            left = per_tenant[tenant] - 1
            if left:
                per_tenant[tenant] = left
            else:
                del per_tenant[tenant]
        return bool(stale)

    def dump(self) -> dict[str, list[list[Any]]]:
        out: dict[str, list[list[Any]]] = {}
        for k, c in self.by_series.items():
            row = [k, _opt(c.hw), _opt(c.prev), c.disordered, _opt(c.mark), _opt(c.since)]
            out.setdefault(c.tenant, []).append(row)
        return out

    def load(self, doc: dict[str, list[list[Any]]], due: float, fresh: bool) -> None:
        self.by_series.clear()
        self.per_tenant.clear()
        for tenant, rows in doc.items():
            tenant = intern(tenant)
            self.per_tenant[tenant] = len(rows)
            for key, hw, prev, disordered, mark, since in rows:
                c = SeriesClock(tenant)
                c.hw = _NEVER if hw is None else float(hw)
                c.prev = _NEVER if prev is None else float(prev)
                c.mark = _NEVER if mark is None else float(mark)
                c.since = _NEVER if since is None else float(since)
                c.disordered = bool(disordered)
                self.by_series[int(key)] = c
        self.due = due
        self.fresh = fresh


def _opt(t: float) -> float | None:
    return None if t == _NEVER else t
