"""The shapes operators meet (benchmarks/synthetic.py), each with its exact window."""

from __future__ import annotations

import pytest

from benchmarks.synthetic import run, shapes

CAUGHT = [
    "level shift up",
    "level shift down",
    "variance change",
    "flat line starts moving",
    "counter's rate drops",
    "one instance of two loses half its traffic",
]
QUIET = [
    "gap of 6 hours, then business as usual",
    "clean daily rhythm",
    "counter reset",
    "two instances, nothing happens",
]
BY_NAME = {s.name: s for s in shapes(seed=1)}


@pytest.mark.parametrize("name", CAUGHT)
def test_the_default_rule_pages_within_three_hours_of_the_change_and_not_before(
    name: str,
) -> None:
    outcome = run(BY_NAME[name])
    assert outcome.caught, outcome
    assert outcome.false_pages == 0, outcome


@pytest.mark.parametrize("name", QUIET)
def test_the_default_rule_stays_quiet_where_nothing_happened(name: str) -> None:
    outcome = run(BY_NAME[name])
    assert outcome.pages == [], outcome
