"""Housekeeping, driven by the watermark: a sample's move of its tenant's clock
(`_moved`), the absence checks of `absent` rules and the eviction of idle series.

Absence checks and idle eviction run when a sample moves the watermark past the
point they are due, before that sample is folded in: never at advance() time,
whose timing depends on batch boundaries. So a replay with other batches, and a
backtest, decide exactly as the original run did.

Apart from the ingest path because they run when due, not per sample; `_moved`, which
a sample calls when it moves its tenant's newest event time, is here because it is
what finds them due.
"""

from __future__ import annotations

from processors.rules import tenancy
from processors.rules.alerts import rule_alert
from processors.rules.closing import WindowClosing
from processors.rules.condition import FIRING, INACTIVE
from processors.rules.state import AnomalyGroup, RuleState

_IDLE_EVICT_S = 3600.0
_EVICT_EVERY_S = 600.0
_ANOMALY_IDLE_S = 24 * 3600.0


def _forget_idle_members(rs: RuleState, horizon: float) -> bool:
    """Drop the detectors of series not scored since `horizon` from groups that go on
    (series come and go under one group: pods replaced under a service). A firing one
    stays until it resolves, or its group is forgotten: its page is still open. Whether
    any was dropped: a series that comes back then takes the slow path, which counts it
    against the rule's cap again."""
    before = rs.detectors
    spec = rs.rule.anomaly
    assert spec is not None
    for g in rs.groups.values():
        assert isinstance(g, AnomalyGroup)  # an anomaly rule's group
        members = g.members
        if len(members) > 1:
            idle = [s for s, m in members.items()
                    if m.last_seen < horizon and not m.detector.firing]  # fmt: skip
            for series in idle:
                del members[series]
            if idle:
                rs.detectors -= len(idle)
                g.retune(spec.threshold)
    return rs.detectors != before


class Housekeeping(WindowClosing):
    def _moved(self, t: float) -> None:
        """A sample moved the tenant's newest event time to `t` (before it is folded in);
        or the partition's, for a tenant that fell idle (tenancy.py)."""
        partition = self.partition
        if t > partition.newest:
            partition.newest = t
            if t >= partition.due:  # never while the partition has one tenant
                tenancy.look(partition)
        self.max_time = t
        wm = self.watermark = t - self.lateness
        if wm >= self._housekeeping_due:
            self._housekeeping()
        if t >= self.clocks.due:  # never with `watermark: partition`
            wm = self.clocks.closing(t, wm)
        if wm > self.close_wm:
            self.close_wm = wm

    def _absent_due(self, rs: RuleState, at: float) -> None:
        if at < rs.absent_due:
            rs.absent_due = at
            if at < self._housekeeping_due:
                self._housekeeping_due = at

    def _housekeeping(self) -> None:
        wm = self.watermark
        self._sync_last_seen()  # absence and eviction read the groups' last_seen
        for rs in self._absent_rules:
            if wm >= rs.absent_due and self._check_absent(rs, wm):
                # a route never holds a firing absent group (Route): the slow path
                # resolves it when its source is back
                self.forget_routes()
        if wm >= self.next_evict:
            grid = (wm // _EVICT_EVERY_S) * _EVICT_EVERY_S
            self._evict_idle(grid)
            self.next_evict = grid + _EVICT_EVERY_S
        self.reschedule()

    def reschedule(self) -> None:
        """Recompute when housekeeping is next due (after a restore, too)."""
        self._housekeeping_due = min(
            [self.next_evict, *(rs.absent_due for rs in self._absent_rules)]
        )

    def _check_absent(self, rs: RuleState, wm: float) -> bool:
        """Declare the series absent that are due; True when any was."""
        limit = rs.rule.absent_s
        due = float("inf")
        fired = False
        for key in sorted(rs.groups):
            g = rs.groups[key]
            if g.phase == FIRING:
                continue
            at = g.last_seen + limit
            if wm >= at:
                g.phase = FIRING
                g.active_since = g.fired_at = at
                rs.active.add(key)
                fired = True
                self._emit(
                    rs, key, at, rule_alert(rs.rule, key, g, FIRING, at, wm - g.last_seen, None)
                )
            elif at < due:
                due = at
        rs.absent_due = due
        return fired

    def _evict_idle(self, wm: float) -> None:
        evicted = False
        for rs in self.rules:
            r = rs.rule
            if r.absent_s:
                continue  # an absent series is exactly what the rule is there to notice
            if r.n_windows:
                # a series is judged idle on its state after the windows due have closed,
                # as an advance before this sample would have closed them: whether one
                # ran in between (a batch boundary) must not decide what is forgotten
                self._close(rs, self.close_wm)
            if r.anomaly is not None:
                idle = r.anomaly.idle_evict
                horizon = wm - (idle.total_seconds() if idle else _ANOMALY_IDLE_S)
                idle_keys = [k for k, g in rs.groups.items() if g.last_seen < horizon]
                evicted = _forget_idle_members(rs, horizon) or evicted
            else:
                # last seen before the horizon: every window it was in has closed
                horizon = wm - r.size - _IDLE_EVICT_S
                idle_keys = [
                    k for k, g in rs.groups.items() if g.phase == INACTIVE and g.last_seen < horizon
                ]
            stale = [s for s, (t, _) in rs.counters.items() if t < horizon]
            for series in stale:
                del rs.counters[series]
            evicted = evicted or bool(stale)
            for key in idle_keys:
                g = rs.groups.pop(key)
                if isinstance(g, AnomalyGroup):
                    rs.detectors -= len(g.members)
                rs.announced.discard(key)
            evicted = evicted or bool(idle_keys)
        self._closed.clear()  # see _advance
        # a route holds its series' clock: a forgotten clock must not stay in use
        evicted = self.clocks.evict(wm - _IDLE_EVICT_S) or evicted
        if evicted:
            # routes point at groups and counters: an evicted group under a route would
            # keep absorbing samples outside the engine's state
            self.forget_routes()
