"""The rule engine of one input partition: samples in, alert transitions out.

Pure and deterministic: event time comes from the samples, and windows close
only when the closing watermark passes their end: with `watermark: series` the
smallest frontier of the live series (processors/rules/clocks.py), never below
the tenant's watermark `its max event time - allowed lateness`, which alone is
used with `watermark: partition` and always drives absence and eviction. The same
input in the same order yields the same transitions, whatever the batch
boundaries, which is what makes crash recovery by checkpoint + replay exact and
backtesting faithful.

Event time is per tenant: the engine of a partition is its provider's (`default`)
tenant's, and holds one engine of the same class for each other tenant with
samples in the partition (processors/rules/tenancy.py). A tenant's samples move
its own clock only, so another tenant's can never make them late or close its
windows; a single-tenant partition is the one engine it always was.

`RuleEngine` is built in layers, each a base class of the next, and each calling only
its own methods and those of the layers below it (the order of the calls between them):

- engine_state.py: what one tenant's engine holds, and the writes every path shares
- closing.py: closing windows (advance, flush)
- housekeeping.py: the clock's move, absence checks, idle eviction
- folding.py: a sample folded into one rule, on the slow path
- route_cache.py: a route made, a sample folded through one
- ingest.py: process_metric and process_log, the entry for records
- here: the engine made, its introspection and its checkpoints (snapshot.py)

Base classes rather than helper objects or functions: every method is still looked up
on the engine as it was when one class held them all, so the split costs the path of
a sample nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from processors.rules import snapshot, tenancy
from processors.rules.compiled import DEFAULT_TENANT, CompiledRule
from processors.rules.ingest import CAPPED, LATE, TENANTS_CAPPED, Ingest
from processors.rules.state import AnomalyGroup, Member
from schemas.rules import Rule as RuleModel
from schemas.rules import RuleSettings

# a sample's outcomes are the engine's API: they are imported from here
__all__ = ["CAPPED", "LATE", "TENANTS_CAPPED", "RuleEngine"]


class RuleEngine(Ingest):
    def __init__(
        self,
        rules: list[RuleModel],
        settings: RuleSettings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        partition: tenancy.Partition | None = None,
    ) -> None:
        """The engine of one partition, which is its provider's tenant's (`partition`
        None); or, made by that one, the engine of another `tenant` in the partition."""
        settings = settings or RuleSettings()
        if partition is None:
            partition = tenancy.Partition(self, [CompiledRule(r) for r in rules], settings)
        super().__init__(settings, tenant, partition)

    # -- introspection and checkpoints -------------------------------------------

    def engines(self) -> list[RuleEngine]:
        """The engine of each tenant with samples in the partition, the provider's first."""
        return self.partition.engines() if self.partition.root is self else [self]

    def series_count(self) -> int:
        return sum(len(rs.groups) for e in self.engines() for rs in e.rules)

    def _members(self) -> Iterator[Member]:
        for e in self.engines():
            for rs in e.rules:
                if rs.rule.anomaly is not None:
                    for g in rs.groups.values():
                        assert isinstance(g, AnomalyGroup)
                        yield from g.members.values()

    def anomaly_memory_bytes(self) -> int:
        """Estimated bytes held by anomaly detectors (reported as a metric)."""
        return sum(m.detector.memory_bytes() for m in self._members())

    def anomaly_series_count(self) -> int:
        """Series with a detector of their own: a group's members, each rule's."""
        return sum(rs.detectors for e in self.engines() for rs in e.rules)

    def dump(self) -> bytes:
        for e in self.engines():
            e._sync_last_seen()
        return snapshot.dump(self)

    def load(self, data: bytes) -> None:
        for e in self.engines():
            e.forget_routes()
        self.partition.others.clear()
        snapshot.load(self, data)
        for e in self.engines():
            for rs in e.rules:
                rs.current = None
