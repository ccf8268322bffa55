"""Per-series routes: which rules, groups and panes one input series feeds.

A series (a tenant's metric name and label set, or log stream labels) resolves to the same
rules and the same group in each of them on every sample: matchers, group keys and
group look-ups give the same answer each time. The engine remembers that answer per
*route key* — the Kafka record key, which producers set to the series — and checks it
on every use by comparing the name, labels and tenant with those the route was built
from, so a key shared by several series (or reused with other labels, or by another
tenant) only costs a rebuild, never a wrong answer. (The feed puts a tenant other than
the provider's in front of the record key, so two tenants' identical series, which share
a Kafka key, keep a route each.) A sample on a known route then costs one dict look-up
and a label comparison, and per rule an accumulator update.

A route holds references into the engine's state (groups, the accumulator of the
current pane): the engine drops every route whenever that state can be replaced under
it (idle eviction, a checkpoint load, `flush`).
"""

from __future__ import annotations

from processors.rules.aggregates import Accumulator
from processors.rules.clocks import SeriesClock
from processors.rules.state import Group, GroupKey, RuleState

WINDOW, ANOMALY, ABSENT, SHADOW = 0, 1, 2, 3


class Slot:
    """One rule a route feeds: its group (by its canonical key), and for window rules
    the accumulator of the pane the last sample went to. Tens of thousands of these
    live at once: every field is paid per series and rule, so what only depends on
    the kind of rule (`kind`) is a class attribute of the subclass (see `make_slot`)."""

    __slots__ = ("acc", "group", "key", "pane", "rs", "step")
    kind = WINDOW

    def __init__(self, rs: RuleState, key: GroupKey, group: Group) -> None:
        self.rs = rs
        self.key = key
        self.group = group
        self.step = rs.step
        self.pane = -(2**62)  # no pane yet
        self.acc: Accumulator | None = None


class AnomalySlot(Slot):
    """Also the route's series: the member of the group whose detector it feeds."""

    __slots__ = ("series",)
    kind = ANOMALY

    def __init__(self, rs: RuleState, key: GroupKey, group: Group, series: str) -> None:
        super().__init__(rs, key, group)
        self.series = series


class AbsentSlot(Slot):
    __slots__ = ()
    kind = ABSENT


def make_slot(rs: RuleState, key: GroupKey, group: Group, series: str) -> Slot:
    """The slot of a plain (not counter, not shadow) rule of a route of `series`."""
    r = rs.rule
    if r.n_windows:
        return Slot(rs, key, group)
    if r.anomaly is not None:
        return AnomalySlot(rs, key, group, series)
    return AbsentSlot(rs, key, group)


class CounterSlot(Slot):
    """A slot of a counter rule: also the series' key in the rule's counters. A window
    rule's, unless made by `make_counter_slot`."""

    __slots__ = ("counter",)

    def __init__(self, rs: RuleState, key: GroupKey, group: Group, counter: str) -> None:
        super().__init__(rs, key, group)
        self.counter = counter


class AnomalyCounterSlot(CounterSlot):
    """A counter scored sample by sample: its detector (the group's member `series`)
    sees the per-second rate."""

    __slots__ = ("series",)
    kind = ANOMALY

    def __init__(
        self, rs: RuleState, key: GroupKey, group: Group, counter: str, series: str
    ) -> None:
        super().__init__(rs, key, group, counter)
        self.series = series


def make_counter_slot(
    rs: RuleState, key: GroupKey, group: Group, counter: str, series: str
) -> CounterSlot:
    r = rs.rule
    if r.per_series:
        return AnomalyCounterSlot(rs, key, group, counter, series)
    return CounterSlot(rs, key, group, counter)


class ShadowSlot(Slot):
    """A window rule whose accumulators are those of an earlier rule of the route, its
    `lead` (the same signal, aggregation, window and group_by: `CompiledRule.share_key`).

    The lead's update counts the sample for both: the shadow's pane holds the very
    accumulator object of the lead's when both started it with the same sample, and a
    sample then costs the shadow one identity check. When they cannot
    share (the shadow's pane already had its own accumulator), the shadow updates its
    own, as an ordinary slot would."""

    __slots__ = ("lead",)
    kind = SHADOW

    def __init__(self, rs: RuleState, key: GroupKey, group: Group, lead: Slot) -> None:
        super().__init__(rs, key, group)
        self.lead = lead


class Route:
    """A series' slots, and what a plain metric sample on it costs: `windows` (the window
    and shadow slots, in rule order) and `anomalies` get a per-sample update; `absent`
    slots none.

    On that path the route keeps the latest event time itself (`last_seen`) instead of
    writing it into each slot's group per sample: the engine folds it into the groups
    (`RuleEngine._sync_last_seen`) before anything reads a group's `last_seen`
    (housekeeping, a checkpoint) and before it drops routes, so the groups hold the
    same value at every point where it matters. An absent slot then needs nothing per
    sample: a route only exists while none of its absent groups is firing (the engine
    drops every route when an absence fires, and the slow path that rebuilds a route
    resolves one that was), so "the source is back" always takes the slow path."""

    __slots__ = ("anomalies", "clock", "labels", "last_seen", "name", "slots", "windows")
    # whether a slot is a counter's (the sample then takes RuleEngine._fold_route): a
    # class attribute (see `make_route`), not a field paid per series
    counters = False

    def __init__(
        self, name: str, labels: dict[str, str], slots: tuple[Slot, ...], clock: SeriesClock
    ) -> None:
        self.name = name
        self.labels = labels
        self.slots = slots
        self.last_seen = float("-inf")
        # the series' clock (processors/rules/clocks.py), which also names its tenant
        self.clock = clock
        windows = tuple(s for s in slots if s.kind in (WINDOW, SHADOW))
        # the same tuple when nothing else is there: a route is paid per series
        self.windows = slots if len(windows) == len(slots) else windows
        self.anomalies = tuple(s for s in slots if s.kind == ANOMALY)


class CounterRoute(Route):
    __slots__ = ()
    counters = True


def make_route(
    name: str, labels: dict[str, str], slots: tuple[Slot, ...], clock: SeriesClock
) -> Route:
    kind = CounterRoute if any(isinstance(s, CounterSlot) for s in slots) else Route
    return kind(name, labels, slots, clock)
