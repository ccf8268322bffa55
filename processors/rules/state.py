"""What an engine holds per rule and per series: plain __slots__ classes, because
there are tens of thousands of them and each one's size is the engine's memory."""

from __future__ import annotations

import math

from processors.anomaly import AnomalySeries
from processors.anomaly.calibration import shifted
from processors.rules.aggregates import Accumulator
from processors.rules.compiled import CompiledRule
from processors.rules.condition import AlertState

GroupKey = tuple[str, ...]
"""A rule's group_by values, in order; for a tenant other than the provider's own
(compiled.DEFAULT_TENANT), its
id follows them as one more element. So two tenants' identical series are two groups
(with their own panes, alert state and fingerprint) while the provider's keys, and the
checkpoints holding them, are as they were before tenants."""


class Group(AlertState):
    """One series of one rule (one combination of group_by values): its alert state and
    when it was last seen. The labels are not stored: they are the rule's group_by
    zipped with the key, rebuilt on output."""

    __slots__ = ("last_seen",)

    def __init__(self) -> None:
        super().__init__()
        self.last_seen = float("-inf")


class Member:
    """One series feeding an anomaly group: its own detector, and when it was last
    scored (a series that stops is forgotten while the group goes on)."""

    __slots__ = ("detector", "last_seen")

    def __init__(self, detector: AnomalySeries) -> None:
        self.detector = detector
        self.last_seen = float("-inf")


class AnomalyGroup(Group):
    """A group of an anomaly rule: a detector per series whose samples it scores, its
    *members*, by series key; the group fires while any member does. A rule with a
    window scores the group's value per window: one member, under the key ""."""

    __slots__ = ("members",)

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, Member] = {}

    def any_firing(self) -> bool:
        return any(m.detector.firing for m in self.members.values())

    def retune(self, threshold: float) -> None:
        """Set each member's threshold from the rule's, for the group as a whole: among
        n series a point this rare comes n times as often as in one, so each member
        needs log10(n) decades more, and the group pages about as rarely as one series
        (a service of many pods would otherwise page for each pod's rare noise)."""
        n = len(self.members)
        own = shifted(threshold, -math.log10(n)) if n > 1 else threshold
        for m in self.members.values():
            m.detector.threshold = own


def new_group(rule: CompiledRule) -> Group:
    return AnomalyGroup() if rule.anomaly is not None else Group()


class RuleState:
    """One rule's series and open windows inside one engine.

    `open[i]` holds the accumulators of pane i, the step-sized slice `[i * step, (i + 1) *
    step)`, by group key: a sample updates one accumulator whatever the number of
    sliding windows it falls in, and window i is merged from panes i .. i + n - 1 when it
    closes. One dict per pane rather than one per series keeps the per-series cost to a
    dict entry.
    """

    __slots__ = (
        "absent_due",
        "active",
        "announced",
        "counters",
        "current",
        "detectors",
        "groups",
        "index",
        "lead",
        "next_window",
        "open",
        "rule",
        "step",
    )

    def __init__(self, rule: CompiledRule, index: int) -> None:
        self.rule = rule
        self.step = rule.step  # the hot path's pane arithmetic, one look-up nearer
        self.index = index
        self.groups: dict[GroupKey, Group] = {}
        self.open: dict[int, dict[GroupKey, Accumulator]] = {}
        self.active: set[GroupKey] = set()  # pending or firing
        # a pending of theirs is on the alerts topic with no firing or resolution after
        # it (a set, not a flag per series: a flag would be paid by every series)
        self.announced: set[GroupKey] = set()
        self.counters: dict[str, tuple[float, float]] = {}  # raw series -> (t, last value)
        # an anomaly rule's members in all its groups: what its max_series caps when it
        # scores each series (a count kept as they come and go, not summed per sample)
        self.detectors = 0
        self.next_window: int | None = None  # index of the next window to close
        # the earlier rule with the same share_key, whose pane accumulators this rule's
        # may be (routes.ShadowSlot): a sample is then added once for both
        self.lead: RuleState | None = None
        # `absent` rules: no series can go absent before this event time (a lower bound)
        self.absent_due = float("inf")
        # the pane slots entered last, (index, open[index]): a cache for routes'
        # pane entries (RuleEngine._enter_pane), dropped whenever a pane may close
        self.current: tuple[int, dict[GroupKey, Accumulator]] | None = None
