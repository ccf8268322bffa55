"""The engine's entry for records: `process_metric` and `process_log`, which take one
sample to its tenant's engine, refuse it when it is late or over a cap, move the
tenant's clock, and fold it in through the series' route when it has one, or else
rule by rule on the slow path (and remember the route the next sample takes).

Every record takes this path, so it holds nothing else: a plain metric sample on a
known route is folded inline here (per window rule, an accumulator update); the other
cases call the route cache's steps (route_cache.py) or the slow path's fold
(folding.py).
"""

from __future__ import annotations

from processors.rules import tenancy
from processors.rules.compiled import DEFAULT_TENANT
from processors.rules.route_cache import RouteCache
from processors.rules.routes import WINDOW
from processors.rules.state import GroupKey, RuleState
from schemas.telemetry import series_key

LATE = "late"
# a new series of a tenant that already has its cap of series in this engine: refused
CAPPED = "tenant_cap"
# a sample of a tenant new to the partition, which already holds its cap of tenants
TENANTS_CAPPED = "partition_tenant_cap"


class Ingest(RouteCache):
    def process_metric(
        self,
        name: str,
        labels: dict[str, str],
        value: float,
        t: float,
        series: str = "",
        route: bytes | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> str | None:
        """Fold one `tenant`'s sample in. Returns LATE when it is beyond the grace, CAPPED
        when it starts a series its tenant has no room for, TENANTS_CAPPED when its tenant
        is new to a partition that has no room for another (none of them is applied).

        `route` (the Kafka record key) names the series for the route cache
        (processors/rules/routes.py): the same answer as without it, faster."""
        if tenant != self.tenant:
            other = tenancy.engine_of(self.partition, tenant)
            if other is None:
                return TENANTS_CAPPED
            return other.process_metric(name, labels, value, t, series, route, tenant)
        self.arrived = True
        if t < self.close_wm:
            return LATE
        if t > self.max_time:
            self._moved(t)
        if route is not None:
            known = self._routes.get(route)
            if known is not None and known.name == name and known.labels == labels:
                c = known.clock
                if t > c.hw:  # SeriesClock.tick, inline
                    c.prev = c.hw
                    c.hw = t
                elif t < c.hw:
                    c.disordered = True
                if known.counters:
                    self._fold_route(known, labels, value, t)
                    return None
                # the hot path, inline: per window rule an accumulator update, nothing
                # else; the groups' last_seen and absent slots are the route's (Route)
                if t > known.last_seen:
                    known.last_seen = t
                for s in known.windows:
                    if s.kind == WINDOW:
                        # a float compared with the slot's int: no int() per sample
                        pane = t // s.step
                        if pane == s.pane:
                            s.acc.add(value, True)  # type: ignore[union-attr]  # set with pane
                        else:
                            self._enter_pane(s, int(pane), value, True)
                    elif s.acc is not s.lead.acc:  # type: ignore[attr-defined]  # a ShadowSlot
                        self._shadow(s, value)  # type: ignore[arg-type]
                for s in known.anomalies:
                    self._score(s.rs, s.key, s.group, value, t, s.series)  # type: ignore[attr-defined]
                return None
        rules = self.by_metric.get(name)
        if rules is None:
            return None
        # a series is its name and labels, whatever record key carries it (and its
        # tenant: the clocks are filed by tenant)
        series = series or series_key(name, labels)
        clock = self.clocks.get(series, tenant)
        if clock is None:
            return CAPPED
        clock.tick(t)
        mine = self._mine
        last_group_by: tuple[str, ...] | None = None
        key: GroupKey = ()
        fed: list[tuple[RuleState, GroupKey, str | None]] = []
        for rs in rules:
            r = rs.rule
            if r.matches is not None and not r.matches(labels):
                continue
            # rules on one metric mostly share their group_by: build the key once
            if r.group_by is not last_group_by:
                last_group_by = r.group_by
                key = r.key_of(labels) + mine if mine else r.key_of(labels)
            v = value
            ck = None
            if r.counter:
                ck = series  # distinct for distinct labels
                if mine:
                    ck = f"{tenant}/{ck}"
                fed.append((rs, key, ck))
                prev = rs.counters.get(ck)
                if prev is not None and t <= prev[0]:
                    # out of order (or a duplicate): its increase is already part of the
                    # delta to the later point; counting it again would inflate the rate
                    continue
                rs.counters[ck] = (t, value)
                if prev is None:
                    continue  # the first point of a counter has no increase yet
                # a counter that went down was reset: it counted up again from zero
                v = value - prev[1] if value >= prev[1] else value
                if r.per_series:
                    # scored sample by sample: the increase per second, so a late or
                    # missed scrape is not a spike (a window rule divides at close)
                    v /= t - prev[0]
            else:
                fed.append((rs, key, None))
            self._fold(rs, key, labels, v, True, t, series)
        if route is not None:
            self._remember(route, name, labels, fed, clock, series)
        return None

    def process_log(
        self,
        labels: dict[str, str],
        status: int | None,
        duration_ms: float | None,
        t: float,
        route: bytes | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> str | None:
        if tenant != self.tenant:
            other = tenancy.engine_of(self.partition, tenant)
            if other is None:
                return TENANTS_CAPPED
            return other.process_log(labels, status, duration_ms, t, route, tenant)
        self.arrived = True
        if t < self.close_wm:
            return LATE
        if t > self.max_time:
            self._moved(t)
        if route is not None:
            known = self._log_routes.get(route)
            if known is not None and known.labels == labels:
                c = known.clock  # SeriesClock.tick, inline
                if t > c.hw:
                    c.prev = c.hw
                    c.hw = t
                elif t < c.hw:
                    c.disordered = True
                self._fold_route(known, labels, 1.0, t, status, duration_ms, logs=True)
                return None
        series = series_key("", labels)
        clock = self.clocks.get(series, tenant)
        if clock is None:
            return CAPPED
        clock.tick(t)
        mine = self._mine
        last_group_by: tuple[str, ...] | None = None
        key: GroupKey = ()
        fed: list[tuple[RuleState, GroupKey, str | None]] = []
        for rs in self.log_rules:
            r = rs.rule
            if r.matches is not None and not r.matches(labels):
                continue
            if r.group_by is not last_group_by:
                last_group_by = r.group_by
                key = r.key_of(labels) + mine if mine else r.key_of(labels)
            # the route holds every rule whose matchers pass: filters depend on the status
            fed.append((rs, key, None))
            if r.log_filter is not None and not r.log_filter(status, labels):
                continue
            if r.log_value == "duration_ms":
                if duration_ms is None:
                    continue
                v = duration_ms
            else:
                v = 1.0
            hit = r.numerator(status, labels) if r.numerator is not None else True
            self._fold(rs, key, labels, v, hit, t, series)
        if route is not None:
            self._remember(route, "", labels, fed, clock, series, logs=True)
        return None
