"""What one tenant's rule engine holds, and the writes into it that every path shares.

`RuleEngine` (processors/rules/engine.py) is built in layers, each a base class of the
next, and this is the lowest: the engine's attributes, made once per tenant, and the
few methods that the ingest path, window closing and housekeeping all call (a
transition decided, a value scored by a series' anomaly detector, the routes' latest
event time folded back into their groups). Every layer above reads and writes this
state directly: a base class, not an object it delegates to, so that nothing on the
path of a sample costs an extra call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from processors.anomaly import AnomalySeries
from processors.rules import tenancy
from processors.rules.alerts import anomaly_alert, at_time
from processors.rules.clocks import Clocks
from processors.rules.compiled import DEFAULT_TENANT
from processors.rules.condition import FIRING, INACTIVE
from processors.rules.routes import Route
from processors.rules.state import AnomalyGroup, Group, GroupKey, Member, RuleState
from schemas.alerts import Alert
from schemas.rules import RuleSettings

if TYPE_CHECKING:
    from processors.rules.closing import ClosedWindow

_NEVER = float("-inf")


class EngineState:
    def __init__(self, settings: RuleSettings, tenant: str, partition: tenancy.Partition) -> None:
        # what the tenants of the partition share, in one object they all point to (the
        # engine's own attributes are read per sample: it keeps few of them)
        self.partition = partition
        self.tenant = tenant
        self.lateness = settings.allowed_lateness.total_seconds()
        self.per_series = settings.watermark == "series"
        # kept in both modes: they also count each tenant's series for its cap
        self.clocks = Clocks(self.lateness, settings.max_series_per_tenant)
        if not self.per_series:
            self.clocks.due = float("inf")
        # the rules this tenant's samples go through: the shared ones and its own, each
        # under its index in the pack (the order transitions come out in)
        self.rules = [
            RuleState(c, i)
            for i, c in enumerate(partition.compiled)
            if c.tenant is None or c.tenant == tenant
        ]
        leads: dict[str | None, RuleState] = {}
        for rs in self.rules:
            k = rs.rule.share_key
            if k is not None:
                # a rule's accumulators may be those of an earlier rule that sees every
                # sample it sees: any rule here does (they all see this tenant's samples)
                lead = leads.get(k)
                if lead is None:
                    leads[k] = rs
                else:
                    rs.lead = lead
        self.by_metric, self.log_rules = self._rules_of()
        # another tenant's series is its own: its group keys end with the tenant
        # (state.GroupKey), its counters' keys start with it
        self._mine: GroupKey = () if tenant == DEFAULT_TENANT else (tenant,)
        self.max_time = float("-inf")
        self.watermark = float("-inf")
        # what closes windows and makes a sample late: the watermark, or ahead of it
        self.close_wm = float("-inf")
        # shared by the partition's engines: whoever feeds a record reads the overflows it
        # caused from the partition's
        self.overflows = partition.overflows
        self.faults = partition.faults
        # (event time, rule index, group key, alert): sorted per advance so the output
        # order does not depend on where batch boundaries fell
        self._out: list[tuple[float, int, GroupKey, Alert]] = []
        self.advances = 0
        self.next_evict = float("-inf")
        self._absent_rules = [rs for rs in self.rules if rs.rule.absent_s]
        # the earliest watermark at which an absence or an eviction can be due
        self._housekeeping_due = float("-inf")
        self._routes: dict[bytes, Route] = {}
        # rules that are some shadow's lead, and their window values of this advance by
        # (rule index, window): see _close_windows
        self._leads = {rs.lead.index for rs in self.rules if rs.lead is not None}
        self._closed: dict[tuple[int, int], ClosedWindow] = {}
        self._log_routes: dict[bytes, Route] = {}
        # whether a sample of this tenant arrived since the partition last looked, and
        # the partition's newest event time when it last saw one (tenancy.py)
        self.arrived = True
        self.seen = partition.newest

    def _rules_of(self) -> tuple[dict[str, list[RuleState]], list[RuleState]]:
        """The engine's rules by metric name, and its log rules."""
        by_metric: dict[str, list[RuleState]] = {}
        logs: list[RuleState] = []
        for rs in self.rules:
            if rs.rule.is_log:
                logs.append(rs)
            elif rs.rule.metric is not None:
                by_metric.setdefault(rs.rule.metric, []).append(rs)
        return by_metric, logs

    def forget_routes(self) -> None:
        """Drop every route: the state they point into is about to change."""
        self._sync_last_seen()
        self._routes.clear()
        self._log_routes.clear()

    def _sync_last_seen(self) -> None:
        """Fold the routes' last_seen into their groups (see Route): before anything
        reads a group's last_seen, and before routes are dropped."""
        for route in self._routes.values():
            self._sync_route(route)

    @staticmethod
    def _sync_route(route: Route) -> None:
        t = route.last_seen
        if t == _NEVER:
            return
        for s in route.slots:
            g = s.group
            if t > g.last_seen:
                g.last_seen = t

    def _emit(self, rs: RuleState, key: GroupKey, at: float, alert: Alert) -> None:
        self._out.append((at, rs.index, key, alert))

    def _score(
        self, rs: RuleState, key: GroupKey, g: Group, v: float, t: float, series: str
    ) -> None:
        """Score `series`' sample with its own detector in the group (a forecast follows
        one series: several interleaved would look like a series that jumps at every
        sample); the group fires when its first member does, and resolves with its last."""
        assert isinstance(g, AnomalyGroup)  # new_group() for an anomaly rule
        m = g.members.get(series)
        if m is None:
            spec = rs.rule.anomaly
            assert spec is not None
            m = g.members[series] = Member(AnomalySeries(spec))
            rs.detectors += 1
            if len(g.members) > 1:
                g.retune(spec.threshold)
        if t > m.last_seen:
            m.last_seen = t
        verdict = m.detector.update(v, at_time(t))
        g.value = v
        transition = verdict.transition
        if transition is None:
            return
        if transition == "firing":
            if g.phase == FIRING:
                return  # another member's page is open: this one joins it
            g.phase, g.active_since, g.fired_at = FIRING, t, t
            rs.active.add(key)
        else:
            if g.phase != FIRING or g.any_firing():
                return  # the group's page stays open while another member fires
            g.phase = INACTIVE
            rs.active.discard(key)
        self._emit(rs, key, t, anomaly_alert(rs.rule, key, g, m.detector, series, verdict, v, t))
