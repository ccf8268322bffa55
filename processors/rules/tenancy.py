"""Event time per tenant: the engines of the tenants sharing one partition.

A tenant's samples move its own clock (newest event time, watermark, per-series
frontiers, housekeeping) and nobody else's, so one tenant's samples (ahead by up to
`max_future_skew`, say) can never make another's late or close its windows. A tenant
with no samples yet has no clock: it starts from its own first sample.

One thing is judged against the partition's newest event time (every tenant's): a
tenant is idle once none of its samples arrived while that moved on by
`max_future_skew` plus `IDLE_S`. Arrived, not dated, as for a series: a tenant whose
samples keep coming but trail the others is alive and keeps its own clock. An idle
tenant's clock follows the partition's, so its windows close, its `absent` rules fire
(at the event time they are due, as its own clock would have fired them) and its idle
series are evicted as the provider's are; once it holds nothing at all, its engine is
dropped. Its first sample back is judged against the clock it followed, or, once the
engine was dropped, starts a new one.

The partition looks at its tenants when a sample moves its newest event time past
`Partition.due`, never at advance() time, so batch boundaries and a checkpoint change
nothing; with one tenant it never looks.
"""

from __future__ import annotations

from sys import intern
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processors.rules.compiled import CompiledRule
    from processors.rules.engine import RuleEngine
    from schemas.rules import RuleSettings

# how long, beyond the allowed future skew, a tenant may send nothing before its clock
# follows the partition's: longer than any sampling interval, so a tenant is never
# idle between two scrapes while another runs ahead
IDLE_S = 300.0
# the partition's event time between two looks at its tenants
_LOOK_EVERY_S = 1.0
_NEVER = float("inf")


class Partition:
    """What the engines of one partition's tenants share: the pack, the settings, the
    provider's engine (`root`, the partition's) and the others by tenant, the newest
    event time of any tenant and when the tenants are next looked at (never while the
    partition has one)."""

    __slots__ = ("compiled", "due", "faults", "idle_after", "newest", "others", "overflows",
                 "root", "settings")  # fmt: skip

    def __init__(
        self, root: RuleEngine, compiled: list[CompiledRule], settings: RuleSettings
    ) -> None:
        self.root = root
        self.compiled = compiled
        self.settings = settings
        self.others: dict[str, RuleEngine] = {}
        self.overflows: list[tuple[str, dict[str, str]]] = []
        # (rule, error) of each window whose close raised and was skipped (RuleEngine._close)
        self.faults: list[tuple[str, str]] = []
        self.newest = float("-inf")
        self.due = _NEVER
        self.idle_after = settings.max_future_skew.total_seconds() + IDLE_S

    def engines(self) -> list[RuleEngine]:
        return [self.root, *self.others.values()]


def engine_of(p: Partition, tenant: str, restoring: bool = False) -> RuleEngine | None:
    """The engine of `tenant` in partition `p`, made on its first sample (of the class of
    the partition's own); None when the partition already holds
    `max_tenants_per_partition` tenants (a checkpoint being restored is exempt: it holds
    what was admitted)."""
    e = p.others.get(tenant)
    if e is None:
        if not restoring and len(p.others) + 1 >= p.settings.max_tenants_per_partition:
            return None
        tenant = intern(tenant)
        e = p.others[tenant] = type(p.root)([], p.settings, tenant=tenant, partition=p)
        if p.due == _NEVER:
            p.due = p.newest  # look at the next move
    return e


def look(p: Partition) -> None:
    """At the partition's newest event time: note the tenants that sent something since
    the last look, move the idle ones' clocks on, drop those that hold nothing."""
    now = p.newest
    idle: list[RuleEngine] = []
    for e in p.engines():
        if e.arrived:
            e.arrived = False
            e.seen = now
        elif now - e.seen > p.idle_after:
            idle.append(e)
    for e in idle:
        if now > e.max_time:
            e._moved(now)  # as a sample of its own at the partition's time would
        if e is not p.root and holds_nothing(e):
            del p.others[e.tenant]
    p.due = now + _LOOK_EVERY_S if p.others else _NEVER


def holds_nothing(e: RuleEngine) -> bool:
    """Nothing of the tenant left to decide or to remember: dropping its engine (and its
    clock) changes nothing but the clock a new sample of it starts from."""
    if e._out or e.clocks.by_series:
        return False
    return all(not rs.groups and not rs.open and not rs.counters for rs in e.rules)
