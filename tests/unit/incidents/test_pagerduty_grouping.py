"""PagerDuty events through routing and the incident core, as the router does it: each
dedup_key is its own incident by default, and a route's group_by can still group them."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from connectors.sources.pagerduty import decode_pagerduty
from processors.incidents.lifecycle import on_alert
from processors.incidents.routing import route
from processors.incidents.state import GroupState
from schemas import Alert
from schemas.commands import Matcher
from schemas.config import Config
from schemas.config.models import Grouping, Route
from tests.unit.incidents.test_lifecycle import CFG, T0

DEFAULT = CFG.model_copy(update={"grouping": Grouping()})  # group_by: alertname, service
BY_GROUP = CFG.model_copy(update={"route": CFG.route.model_copy(update={"routes": [
    Route(matchers=[Matcher(label="group", value="storage")], group_by=["group"]),
    *CFG.route.routes,
]})})  # fmt: skip


def pd(action: str, key: str, source: str = "", summary: str = "", group: str = "") -> Alert:
    body: dict[str, object] = {"routing_key": "R", "event_action": action, "dedup_key": key}
    if source:
        payload = {"summary": summary, "source": source, "severity": "critical"}
        body["payload"] = {**payload, "group": group} if group else payload
    return decode_pagerduty(orjson.dumps(body), T0)[1]


class Router:
    """The agents' routing in miniature: one group state per group key."""

    def __init__(self, cfg: Config) -> None:
        self.cfg, self.groups = cfg, dict[str, GroupState]()

    def send(self, a: Alert, minutes: int) -> list[str]:
        """The ledger kinds the alert produced, over every group it went to."""
        kinds = []
        for routed in route(self.cfg, a.labels):
            gk = routed.group_key(a.labels)
            g = self.groups.setdefault(gk, GroupState(group_key=gk, route=routed.decision))
            out = on_alert(g, a, T0 + timedelta(minutes=minutes), self.cfg)
            kinds += [e.kind for e in out.events]
        return kinds

    def incident_of(self, fingerprint: str) -> GroupState:
        (g,) = [g for g in self.groups.values() if fingerprint in g.members]
        return g


@pytest.mark.parametrize("cfg", [DEFAULT, CFG], ids=["schema-default", "examples"])
def test_unrelated_events_open_separate_incidents_and_resolve_their_own(cfg: Config) -> None:
    r = Router(cfg)
    r.send(pd("trigger", "db-1/disk", "db-1", "disk full on db-1"), 0)
    r.send(pd("trigger", "lb-7/tls", "lb-7", "certificate expires"), 1)
    disk, tls = r.incident_of("db-1/disk"), r.incident_of("lb-7/tls")
    assert disk.incident_id != tls.incident_id and disk.open and tls.open
    assert list(disk.members) == ["db-1/disk"] and list(tls.members) == ["lb-7/tls"]
    assert "resolved" in r.send(pd("resolve", "db-1/disk"), 2), "a resolve without payload"
    assert disk.status == "resolved" and tls.open


@pytest.mark.parametrize("cfg", [DEFAULT, CFG], ids=["schema-default", "examples"])
def test_a_new_event_does_not_reopen_an_unrelated_resolved_incident(cfg: Config) -> None:
    r = Router(cfg)
    r.send(pd("trigger", "db-1/disk", "db-1", "disk full on db-1"), 0)
    r.send(pd("resolve", "db-1/disk"), 1)
    disk = r.incident_of("db-1/disk")
    kinds = r.send(pd("trigger", "lb-7/tls", "lb-7", "certificate expires"), 5)
    assert "reopened" not in kinds and "opened" in kinds
    assert disk.status == "resolved", "inside the reopen window, still not reopened"
    assert r.incident_of("lb-7/tls").incident_id != disk.incident_id
    assert "reopened" in r.send(pd("trigger", "db-1/disk", "db-1", "disk full again"), 6)


def test_a_route_with_group_by_still_groups_events() -> None:
    r = Router(BY_GROUP)
    r.send(pd("trigger", "db-1/disk", "db-1", "disk full", group="storage"), 0)
    r.send(pd("trigger", "db-2/disk", "db-2", "disk full", group="storage"), 1)
    r.send(pd("trigger", "lb-7/tls", "lb-7", "certificate expires", group="edge"), 2)
    storage = r.incident_of("db-1/disk")
    assert set(storage.members) == {"db-1/disk", "db-2/disk"}
    assert r.incident_of("lb-7/tls").incident_id != storage.incident_id
