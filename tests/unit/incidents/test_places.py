"""The router's memory of where a label set goes answers as routing itself does."""

from __future__ import annotations

from pathlib import Path

from processors.incidents.ledger import group_id
from processors.incidents.routing import route
from processors.incidents.suppression import Suppressions
from schemas.config import load_config
from streams.agents.decide import partition_of
from streams.agents.places import Places

CFG = load_config([Path("examples/config")])


def test_places_are_routing_remembered() -> None:
    sup = Suppressions.from_config(CFG)
    places = Places(CFG, sup, 6)
    label_sets = [
        {"alertname": "cpu", "service": "search", "host": "web-01"},
        {"host": "web-01", "service": "search", "alertname": "cpu"},  # another order
        {"alertname": "down", "service": "payments", "env": "prod"},
        {"alertname": "source_absent", "host": "web-01"},  # can inhibit others
        {},
    ]
    assert places.of(label_sets[3])[0]
    for labels in label_sets * 2:  # the second pass is answered from memory
        source, where = places.of(labels)
        assert source == sup.is_source(labels)
        expected = [(r.group_key(labels), r.decision.__dict__) for r in route(CFG, labels)]
        assert [(p.group_key, p.route) for p in where] == expected
        for p in where:
            assert p.group_id == group_id(p.group_key)
            assert p.partition == partition_of(p.group_id.encode(), 6)
