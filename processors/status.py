"""Status pages' pure core: which components an incident affects, each component's state
now, and its history of the last days. Time is an argument.

A component's state, first that applies:
1. a responder's override (until cleared);
2. scheduled maintenance in progress over it: `maintenance`;
3. the worst of its open incidents, by priority (`priority_states`: P1 major outage,
   P2 partial outage, P3-P5 degraded by default);
4. `operational`.

History: per UTC day, the worst state an incident of the component had that day, and the
time the component was down — covered by an incident that maps to a partial or major
outage (overlapping incidents count once). Uptime is one minus the down time over the
time observed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from schemas.commands import Matcher
from schemas.status import STATES, Component, ComponentState, Day

DOWN: frozenset[str] = frozenset({"partial_outage", "major_outage"})
_RANK = {s: i for i, s in enumerate(STATES)}
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Affecting:
    """An incident as the status core sees it: no title, no labels beyond matching."""

    incident_id: str
    service: str | None
    labels: Mapping[str, str]
    priority: str
    opened_at: datetime
    resolved_at: datetime | None
    # components a responder's update named (they count besides the mapped ones)
    named: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Window:
    components: frozenset[str]
    starts_at: datetime
    ends_at: datetime


def matches(m: Matcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(m.label, "")
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    hit = re.fullmatch(m.value, value) is not None
    return hit if m.op == "=~" else not hit


def affects(c: Component, inc: Affecting) -> bool:
    if c.id in inc.named:
        return True
    if inc.service not in c.services:
        return False
    return all(matches(m, inc.labels) for m in c.matchers)


def worst(states: Iterable[ComponentState]) -> ComponentState:
    out: ComponentState = "operational"
    for s in states:
        if _RANK[s] > _RANK[out]:
            out = s
    return out


def state_of(c: Component, incidents: Sequence[Affecting], windows: Sequence[Window],
             overrides: Mapping[str, ComponentState], by_priority: Mapping[str, ComponentState],
             now: datetime) -> ComponentState:  # fmt: skip
    if c.id in overrides:
        return overrides[c.id]
    if any(c.id in w.components and w.starts_at <= now < w.ends_at for w in windows):
        return "maintenance"
    return worst(by_priority.get(i.priority, "degraded") for i in incidents
                 if (i.resolved_at is None or i.resolved_at > now) and i.opened_at <= now
                 and affects(c, i))  # fmt: skip


def history(c: Component, incidents: Sequence[Affecting],
            by_priority: Mapping[str, ComponentState], now: datetime,
            days: int = 90) -> tuple[float, list[Day]]:  # fmt: skip
    """(uptime over the period, one Day per UTC day, oldest first, today last)."""
    first = first_day(now, days)
    origin = datetime.combine(first, time(0), UTC).timestamp()
    end = now.timestamp()
    n_days = min(days, int((end - origin) // _DAY) + 1)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(n_days)]
    states: list[list[ComponentState]] = [[] for _ in range(n_days)]
    for i in incidents:
        e_at = min(i.resolved_at.timestamp() if i.resolved_at else end, end)
        if e_at <= origin or not affects(c, i):
            continue
        s_at = i.opened_at.timestamp()
        st = by_priority.get(i.priority, "degraded")
        down = st in DOWN
        # only the days the incident spans: a page costs the incidents, not incidents x days
        for n in range(max(0, int((s_at - origin) // _DAY)),
                       min(n_days, int((e_at - origin) // _DAY) + 1)):  # fmt: skip
            lo = origin + n * _DAY
            a, b = max(s_at, lo), min(e_at, lo + _DAY)
            if a >= b:
                continue
            states[n].append(st)
            if down:
                spans[n].append((a, b))
    out: list[Day] = []
    down_total = observed = 0.0
    for n in range(n_days):
        lo = origin + n * _DAY
        length = min(lo + _DAY, end) - lo
        down_s = _union(spans[n])
        down_total += down_s
        observed += length
        out.append(Day(day=first + timedelta(days=n), state=worst(states[n]), down_s=down_s,
                       uptime=1.0 - down_s / length if length else 1.0))  # fmt: skip
    return (1.0 - down_total / observed if observed else 1.0), out


def _union(spans: list[tuple[float, float]]) -> float:
    total = 0.0
    reach: float | None = None
    for s, e in sorted(spans):
        if reach is not None and s < reach:
            s = reach
        if e > s:
            total += e - s
            reach = e if reach is None or e > reach else reach
    return total


def first_day(now: datetime, days: int = 90) -> date:
    return now.astimezone(UTC).date() - timedelta(days=days - 1)
