"""Closing windows: what advance() and flush() do. Once the closing watermark has
passed a window's end, its panes are merged into each group's value over the window
(`_window_values`) and each group decides on it; an anomaly rule's detector scores it.

Apart from the ingest path because it runs per window, not per sample: from advance()
and flush(), and from the sample paths where a decision must not depend on whether an
advance ran first (an early decision, an idle series about to be evicted).
"""

from __future__ import annotations

from collections.abc import Callable, Container

from processors.rules.aggregates import Accumulator
from processors.rules.alerts import rule_alert
from processors.rules.condition import FIRING, INACTIVE, PENDING
from processors.rules.engine_state import EngineState
from processors.rules.state import Group, GroupKey, RuleState, new_group
from schemas.alerts import Alert

Values = list[tuple[GroupKey, float | None]]
# a window's panes (each a dict of accumulators by group key), its values and its keys
ClosedWindow = tuple[list[dict[GroupKey, Accumulator]], Values, Container[GroupKey]]


def _window_values(
    panes: list[dict[GroupKey, Accumulator]],
    min_samples: int,
    combine: Callable[[list[Accumulator]], float | None],
) -> tuple[Values, Container[GroupKey]]:
    """Each group's value over a window's non-empty panes (None: too few samples), and
    the keys that had any."""
    if not panes:
        return [], ()
    if len(panes) == 1:
        seen = panes[0]
        return [
            (key, acc.result() if acc.count >= min_samples else None) for key, acc in seen.items()
        ], seen
    by_key: dict[GroupKey, list[Accumulator]] = {}
    for p in panes:
        for key, acc in p.items():
            parts = by_key.get(key)
            if parts is None:
                by_key[key] = [acc]
            else:
                parts.append(acc)
    items: Values = []
    for key, parts in by_key.items():
        if len(parts) == 1:
            acc = parts[0]
            value = acc.result() if acc.count >= min_samples else None
        elif len(parts) >= min_samples or sum(p.count for p in parts) >= min_samples:
            value = combine(parts)
        else:
            value = None
        items.append((key, value))
    return items, by_key


class WindowClosing(EngineState):
    def advance(self) -> list[Alert]:
        """Close every window the closing watermark (each tenant's) has passed; return
        the transitions, in order."""
        others = self.partition.others
        if not others:
            return self._sorted(self._advance(self.close_wm))
        out = self._advance(self.close_wm)
        for e in others.values():
            out += e._advance(e.close_wm)
        return self._sorted(out)

    def flush(self) -> list[Alert]:
        """End of a finite input (backtests): close every open window, as if time went on
        by one window, without declaring the sources absent for having stopped."""
        out = self._flush()
        for e in self.partition.others.values():
            out += e._flush()
        return self._sorted(out)

    def _flush(self) -> list[tuple[float, int, GroupKey, Alert]]:
        horizon = max((rs.rule.size for rs in self.rules), default=0.0)
        self.forget_routes()  # panes close ahead of the watermark: no cached pane survives
        return self._advance(self.max_time + horizon)

    def _advance(self, wm: float) -> list[tuple[float, int, GroupKey, Alert]]:
        for rs in self.rules:
            if rs.rule.n_windows:
                self._close(rs, wm)
        self._closed.clear()  # only valid while no sample came in since
        self.advances += 1
        if not self._out:
            return []
        out, self._out = self._out, []
        return out

    @staticmethod
    def _sorted(out: list[tuple[float, int, GroupKey, Alert]]) -> list[Alert]:
        if not out:
            return []
        out.sort(key=lambda item: (item[0], item[1], item[2]))
        return [alert for *_, alert in out]

    def _close(self, rs: RuleState, wm: float) -> None:
        """Close `rs`'s windows due at `wm`. A window whose close raises (a fault of
        tocsin's own) is skipped and reported in `faults`: raised, it would stop the
        worker at every replay, silencing every rule of the partition. Its alerts
        already decided stand; the rest of the window's groups decide nothing."""
        while True:
            try:
                self._close_windows(rs, wm)
                return
            except Exception as exc:
                i = rs.next_window
                self.partition.faults.append(
                    (rs.rule.rule.name, f"window {i} not closed: {type(exc).__name__}: {exc}")
                )
                if i is None:
                    return
                rs.current = None
                rs.open.pop(i, None)
                rs.next_window = i + 1 if rs.open or rs.active else None

    def _close_windows(self, rs: RuleState, wm: float) -> None:
        r = rs.rule
        if r.anomaly is not None:
            self._close_anomaly_windows(rs, wm)
            return
        cond = r.condition
        assert cond is not None
        step, size = r.step, r.size
        min_samples = r.rule.min_samples
        n = r.n_windows
        combine = r.combine
        # the common case inline: an inactive series whose value does not cross the
        # threshold only records its value (AlertState.evaluate decides everything else)
        op, threshold = cond.op, cond.threshold
        groups = rs.groups
        # a shadow (routes.ShadowSlot) whose panes hold the very accumulators of its lead's
        # has the lead's values: reuse them instead of merging the panes again
        lead = (
            rs.lead
            if rs.lead is not None and rs.lead.rule.rule.min_samples == min_samples
            else None
        )
        closed = self._closed
        shares = rs.index in self._leads
        while rs.next_window is not None and rs.next_window * step + size <= wm:
            i = rs.next_window
            start = i * step
            end = start + size
            rs.current = None  # it may be a pane closed below
            if n == 1:  # tumbling: the window is its one pane
                pane = rs.open.pop(i, None)
                panes = [pane] if pane else []
            else:
                panes = [p for p in (rs.open.get(j) for j in range(i, i + n)) if p]
            cached = closed.get((lead.index, i)) if lead is not None else None
            # list == compares the pane dicts: the same keys, identical accumulators
            if cached is not None and cached[0] == panes:
                _, items, seen = cached
            else:
                items, seen = _window_values(panes, min_samples, combine)
                if shares:
                    closed[(rs.index, i)] = (panes, items, seen)
            if rs.active:
                # a new list: `items` may be the lead's, shared through `closed`
                items = items + [(key, None) for key in rs.active if key not in seen]
            # keys in any order: the transitions are sorted by (time, rule, key) on output
            for key, value in items:
                g = groups.get(key)
                if g is None:  # evicted while idle: an inactive group starts afresh
                    g = groups[key] = Group()
                if g.phase == INACTIVE:
                    if value is None:
                        continue
                    if r.per_second:
                        value /= size
                    if not op(value, threshold):
                        # nothing to record: an inactive series' value is never shown
                        # (a transition carries the value that caused it)
                        continue
                elif end <= g.fired_at:
                    # fired early by a sample after this window's end, which did not
                    # wait for it: a window before the decision cannot undo it
                    continue
                elif value is not None and r.per_second:
                    value /= size
                was = g.phase
                change = g.evaluate(cond, value, end)
                if change is None:
                    continue
                if change == INACTIVE:
                    rs.active.discard(key)
                    if was == PENDING:
                        # never fired: nobody was told, so nothing to take back; the
                        # pending already on the topic stands for the next one too
                        continue
                else:
                    rs.active.add(key)
                    if change == FIRING:
                        rs.announced.discard(key)
                    elif key in rs.announced:
                        continue
                    else:
                        rs.announced.add(key)
                self._emit(rs, key, end, rule_alert(r, key, g, change, end, value, (start, end)))
            if n > 1:
                rs.open.pop(i, None)  # no later window holds pane i
            # nothing open and nothing to resolve: wait for the next sample to say
            # which window comes next (no stepping through empty time)
            rs.next_window = i + 1 if rs.open or rs.active else None

    def _close_anomaly_windows(self, rs: RuleState, wm: float) -> None:
        """An anomaly rule with a window: its detector scores each group's value of each
        window as it closes, at the window's end (a window without samples of a group
        is no point of its series: a gap, as a missed scrape is)."""
        r = rs.rule
        step, size, n = r.step, r.size, r.n_windows
        min_samples = r.rule.min_samples
        groups = rs.groups
        while rs.next_window is not None and rs.next_window * step + size <= wm:
            i = rs.next_window
            end = i * step + size
            rs.current = None  # it may be a pane closed below
            panes = [p for p in (rs.open.get(j) for j in range(i, i + n)) if p]
            items, _ = _window_values(panes, min_samples, r.combine)
            for key, value in items:
                if value is None:
                    continue
                g = groups.get(key)
                if g is None:  # evicted while idle: its detector starts afresh
                    g = groups[key] = new_group(r)
                self._score(rs, key, g, value / size if r.per_second else value, end, "")
            rs.open.pop(i, None)  # no later window holds pane i
            rs.next_window = i + 1 if rs.open else None
