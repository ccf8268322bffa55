"""A sample folded into one rule's state in full: the slow path, taken by a series
without a route (processors/rules/routes.py) and by what a route leaves to it.

Per rule: the group found or made (a new one counted against the rule's cap), the
sample added to its pane's accumulator, an `early` rule's decision at the sample that
makes it sure, an anomaly rule's series scored, an `absent` rule's source back. Apart
from the route cache, which repeats the common cases of this for a known series
without the look-ups, and from ingest, which finds the rules a sample goes to.
"""

from __future__ import annotations

from processors.rules.aggregates import Accumulator
from processors.rules.alerts import rule_alert
from processors.rules.condition import FIRING, INACTIVE
from processors.rules.housekeeping import Housekeeping
from processors.rules.state import Group, GroupKey, RuleState, new_group


class Folding(Housekeeping):
    def _fold(
        self,
        rs: RuleState,
        key: GroupKey,
        labels: dict[str, str],
        v: float,
        hit: bool,
        t: float,
        series: str,
    ) -> None:
        r = rs.rule
        g = rs.groups.get(key)
        # a rule with a detector per series caps those, not its groups
        per_series = r.per_series
        new = g is None or (per_series and series not in g.members)  # type: ignore[attr-defined]
        if new and (rs.detectors if per_series else len(rs.groups)) >= r.rule.max_series:
            self.overflows.append((r.rule.name, labels))
            return
        if g is None:
            g = rs.groups[key] = new_group(r)
            if r.absent_s:
                self._absent_due(rs, t + r.absent_s)
        if t > g.last_seen:
            g.last_seen = t
        n = r.n_windows
        if n:
            # one accumulator per step-sized pane, whatever the number of windows that
            # overlap it: a sliding window is merged from its panes when it closes
            pane_index = int(t // r.step)
            pane = rs.open.get(pane_index)
            if pane is None:
                pane = rs.open[pane_index] = {}
            acc = pane.get(key)
            if acc is None:
                acc = pane[key] = r.start_accumulator(v, hit)
            elif rs.lead is None or acc is not rs.lead.open.get(pane_index, {}).get(key):
                acc.add(v, hit)
            # else: shared with the lead (a ShadowSlot), which has just added this sample
            first = pane_index - n + 1
            if rs.next_window is None or first < rs.next_window:
                rs.next_window = first  # see _enter_pane
            # a firing series too: the windows due to close may resolve it first, as an
            # advance before this sample would have, and the sample then decides afresh
            if r.early and acc.count >= r.rule.min_samples:
                self._decide_early(rs, key, g, acc, first, t)
        elif r.anomaly is not None:
            self._score(rs, key, g, v, t, series)
        elif g.phase == FIRING:  # `absent`: the source is back
            g.phase = INACTIVE
            rs.active.discard(key)
            self._absent_due(rs, t + r.absent_s)
            self._emit(rs, key, t, rule_alert(r, key, g, INACTIVE, t, None, None))

    def _decide_early(
        self, rs: RuleState, key: GroupKey, g: Group, acc: Accumulator, first: int, t: float
    ) -> None:
        """An `early` rule's pane already crosses: so does every window holding it (a max,
        a min or a count only moves one way as a window fills)."""
        r = rs.rule
        cond = r.condition
        assert cond is not None  # a window rule
        value = acc.result()
        if value is None or not cond.op(value, cond.threshold):
            return
        # the windows this sample cannot be in are decided first, as an advance before it
        # would have: the order of decisions does not depend on batch boundaries
        self._close(rs, self.close_wm)
        self._closed.clear()  # valid for one advance only (see _advance)
        if g.phase != INACTIVE:
            return
        if (
            rs.next_window is not None
            and rs.next_window < first
            and self._crosses_before(rs, key, first)
        ):
            # an earlier window of this group is still open and crosses already: its
            # decision comes first (a later sample of this pane may decide early once it
            # is made). Earlier windows of other groups, or of this one below the
            # threshold, do not hold it back: they cannot change this group's state.
            return
        change = g.evaluate(cond, value, t)
        if change is None:
            return
        rs.active.add(key)
        start = first * r.step
        window = (start, start + r.size)
        self._emit(rs, key, t, rule_alert(r, key, g, change, t, value, window, early=True))

    def _crosses_before(self, rs: RuleState, key: GroupKey, first: int) -> bool:
        """Whether an open window of `key` that starts before window `first` crosses
        the threshold with the samples it holds so far."""
        r = rs.rule
        cond = r.condition
        assert cond is not None and rs.next_window is not None
        for start in range(rs.next_window, first):
            parts = [p[key] for j in range(start, start + r.n_windows)
                     if (p := rs.open.get(j)) is not None and key in p]  # fmt: skip
            if not parts or sum(a.count for a in parts) < r.rule.min_samples:
                continue
            value = parts[0].result() if len(parts) == 1 else r.combine(parts)
            if value is not None and cond.op(value, cond.threshold):
                return True
        return False
