"""Where the router sends an alert, remembered per label set.

Routing depends on the tenant, the labels and that tenant's config only: the route tree (compiled
matchers), the group key, the group id (a sha256) and its `incident-work`
partition (a pure-Python murmur2), and whether the alert can inhibit others (the
config's inhibition rules). A fleet sends the same label sets over and over, so
each set is worked out once (the tenant and the labels as given, in their order, are
the key). The group key starts with the tenant (tenants.tenant_group_key): two tenants'
alerts never share a group, whatever their labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.incidents.ledger import group_id
from processors.incidents.routing import route
from processors.incidents.suppression import Suppressions
from processors.incidents.tenants import DEFAULT, Tenants, tenant_group_key
from schemas.config import Config
from streams.agents.decide import partition_of

SIZE = 65_536  # label sets remembered; past that the memory starts over


@dataclass(frozen=True, slots=True)
class Place:
    group_id: str
    group_key: str
    route: dict[str, Any]  # the routing decision, as the bundle carries it
    partition: int


class Places:
    def __init__(self, cfg: Config | Tenants, sup: Suppressions | None,
                 partitions: int) -> None:  # fmt: skip
        self._tenants = cfg if isinstance(cfg, Tenants) else Tenants.single(cfg, sup)
        self._partitions = partitions
        self._known: dict[tuple[object, ...], tuple[bool, list[Place]]] = {}

    def of(self, labels: dict[str, str], tenant: str = DEFAULT) -> tuple[bool, list[Place]]:
        """(whether it can inhibit others, where it goes: one place per matching route)."""
        key = (tenant, *labels.items())
        hit = self._known.get(key)
        if hit is None:
            if len(self._known) >= SIZE:
                self._known.clear()
            source = self._tenants.suppressions(tenant).is_source(labels)
            hit = self._known[key] = (source, self._work_out(labels, tenant))
        return hit

    def _work_out(self, labels: dict[str, str], tenant: str) -> list[Place]:
        out = []
        for routed in route(self._tenants.config(tenant), labels):
            gk = tenant_group_key(tenant, routed.group_key(labels))
            gid = group_id(gk)
            out.append(Place(gid, gk, dict(routed.decision.__dict__),
                             partition_of(gid.encode(), self._partitions)))  # fmt: skip
        return out
