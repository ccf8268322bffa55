"""The engine's side of the route cache (processors/rules/routes.py): a route made
from what the slow path fed (`_remember`), and a sample folded through a known route's
slots (`_fold_route`, and `_enter_pane` and `_shadow` for a slot whose sample starts
a pane).

Apart from folding.py because these are the fast path's own steps, each repeating a
common case of the slow path's fold without its look-ups. The plainest case of all (a
metric route without counters) is folded inline in `process_metric`, which calls
`_enter_pane` and `_shadow` itself.
"""

from __future__ import annotations

from processors.rules.clocks import SeriesClock
from processors.rules.condition import FIRING
from processors.rules.folding import Folding
from processors.rules.routes import (
    ANOMALY,
    SHADOW,
    WINDOW,
    CounterSlot,
    Route,
    ShadowSlot,
    Slot,
    make_counter_slot,
    make_route,
    make_slot,
)
from processors.rules.state import GroupKey, RuleState


class RouteCache(Folding):
    def _remember(
        self,
        route: bytes,
        name: str,
        labels: dict[str, str],
        fed: list[tuple[RuleState, GroupKey, str | None]],
        clock: SeriesClock,
        series: str,
        logs: bool = False,
    ) -> None:
        slots: list[Slot] = []
        for rs, key, counter in fed:
            if rs.rule.early:
                return  # decided per sample on the slow path (_decide_early)
            g = rs.groups.get(key)
            if g is None or (rs.rule.per_series and series not in g.members):  # type: ignore[attr-defined]
                # not created (a series cap, a counter's first point, a log filter that
                # did not pass yet): the slow path decides until the group, or the
                # series' detector in it, exists
                return
            lead = next((s for s in slots if s.rs is rs.lead), None) if rs.lead else None
            if lead is not None:
                slots.append(ShadowSlot(rs, key, g, lead))
            elif counter is None:
                slots.append(make_slot(rs, key, g, series))
            else:
                slots.append(make_counter_slot(rs, key, g, counter, series))
        routes = self._log_routes if logs else self._routes
        made = make_route(name, labels, tuple(slots), clock)
        replaced = routes.get(route)
        if replaced is not None:
            # the key now carries other labels: the old route's last_seen is its groups'
            # (a matcher the new labels miss leaves groups only the old route updated)
            self._sync_route(replaced)
        routes[route] = made

    def _fold_route(
        self,
        route: Route,
        labels: dict[str, str],
        value: float,
        t: float,
        status: int | None = None,
        duration_ms: float | None = None,
        logs: bool = False,
    ) -> None:
        """A sample on a known route, slot by slot: a metric route with counters (a
        plain one is folded inline in process_metric) or a log route. Only the value a
        slot gets differs between the two; what is done with it is the same."""
        for s in route.slots:
            hit = True
            if logs:
                r = s.rs.rule  # as in process_log
                if r.log_filter is not None and not r.log_filter(status, labels):
                    continue
                if r.log_value == "duration_ms":
                    if duration_ms is None:
                        continue
                    v = duration_ms
                else:
                    v = 1.0
                if r.numerator is not None:
                    hit = r.numerator(status, labels)
            elif isinstance(s, CounterSlot):  # as in process_metric
                counters = s.rs.counters
                prev = counters.get(s.counter)
                if prev is not None and t <= prev[0]:
                    continue
                counters[s.counter] = (t, value)
                if prev is None:
                    continue
                v = value - prev[1] if value >= prev[1] else value
                if s.kind == ANOMALY:
                    v /= t - prev[0]  # see process_metric
            else:
                v = value
            g = s.group
            if t > g.last_seen:
                g.last_seen = t
            if s.kind == WINDOW:
                pane = t // s.step
                if pane == s.pane:
                    s.acc.add(v, hit)  # type: ignore[union-attr]  # set with the pane
                else:
                    self._enter_pane(s, int(pane), v, hit)
            elif s.kind == SHADOW:  # metric rules only: a log route has none
                if s.acc is not s.lead.acc:  # type: ignore[attr-defined]  # a ShadowSlot
                    self._shadow(s, v)  # type: ignore[arg-type]
            elif s.kind == ANOMALY:
                self._score(s.rs, s.key, g, v, t, s.series)  # type: ignore[attr-defined]
            elif g.phase == FIRING:  # `absent`: the source is back
                self._fold(s.rs, s.key, labels, v, hit, t, "")

    def _enter_pane(self, s: Slot, index: int, v: float, hit: bool) -> None:
        rs = s.rs
        current = rs.current
        if current is not None and current[0] == index:
            # every series of a scrape enters the same new pane: one look-up for all, and
            # their slots hold one int object for it instead of one each. next_window was
            # lowered for it when it became current, and only a close (which drops
            # `current`) raises next_window
            index, pane = current
        else:
            found = rs.open.get(index)
            pane = rs.open[index] = {} if found is None else found
            rs.current = (index, pane)
            first = index - rs.rule.n_windows + 1
            # `<`: a sample within the grace but older than the series' first one opens
            # windows before those the first one opened; none of them has closed yet
            if rs.next_window is None or first < rs.next_window:
                rs.next_window = first
        acc = pane.get(s.key)
        if acc is None:
            acc = pane[s.key] = rs.rule.start_accumulator(v, hit)
        else:
            acc.add(v, hit)
        s.pane, s.acc = index, acc

    def _shadow(self, s: ShadowSlot, v: float) -> None:
        """A shadow slot whose accumulator is not (yet) its lead's: the lead has just
        added the sample to the accumulator of pane `lead.pane`."""
        lead = s.lead
        index = lead.pane
        shared = lead.acc
        assert shared is not None  # the lead's update set it
        rs = s.rs
        current = rs.current
        if current is not None and current[0] == index:
            pane = current[1]  # as in _enter_pane, next_window included
        else:
            found = rs.open.get(index)
            pane = rs.open[index] = {} if found is None else found
            rs.current = (index, pane)
            first = index - rs.rule.n_windows + 1
            if rs.next_window is None or first < rs.next_window:
                rs.next_window = first  # see _enter_pane
        acc = pane.get(s.key)
        if acc is None:
            if shared.count == 1:
                # the lead started its accumulator with this very sample: from here on
                # both rules see the same samples of this pane, so they share it
                acc = pane[s.key] = shared
            else:
                acc = pane[s.key] = rs.rule.start_accumulator(v, True)
        elif acc is not shared:
            acc.add(v, True)
        # else shared through another series of the same group: already counted
        s.pane, s.acc = index, acc
