"""A fleet's disorder as it comes in practice: 20 hosts scraped every 5 s for 20 minutes,
a tenth of the samples delivered up to 20 s late (a retried remote-write batch, a slow
agent), across all series; the engine's transitions against those of the sorted input.

With `watermark: partition` the transitions are exactly the sorted input's. With
`watermark: series` (the default) they are too, but for the first out-of-order sample
of a series, which may find its window already decided and be refused as late (two of
the six fleets here lose five and two such samples); nothing else changes. The
hypothesis properties (test_properties.py, test_series_disorder.py) cover every order
on a few series; this is the same promise at a realistic scale."""

from __future__ import annotations

import random

import pytest

from processors.rules.engine import LATE, RuleEngine
from schemas import encode
from schemas.rules import RuleSettings
from tests.unit.rules.test_properties import PARTITION, RULES, SETTINGS, T0

Sample = tuple[str, float, float]
HOSTS = 20
SCRAPES = 240  # 20 minutes at 5 s


def _fleet(seed: int) -> list[Sample]:
    """Sorted by event time: each host a random walk in whole numbers (sums stay exact
    in any order of addition), crossing the rules' thresholds now and then."""
    rnd = random.Random(seed)
    out = []
    for h in range(HOSTS):
        v = 40
        for k in range(SCRAPES):
            v = min(100, max(0, v + rnd.choice((-10, -5, 0, 5, 10))))
            out.append((f"h{h:02d}", float(v), T0 + 5 * k + h * 0.01))
    return sorted(out, key=lambda s: s[2])


def _late(samples: list[Sample], seed: int) -> list[Sample]:
    """Arrival order: one sample in ten delayed by up to 20 s."""
    rnd = random.Random(1000 + seed)
    delay = [rnd.uniform(0, 20) if rnd.random() < 0.1 else 0.0 for _ in samples]
    return [s for _, s in sorted(zip(delay, samples, strict=True), key=lambda x: x[1][2] + x[0])]


def _run(samples: list[Sample], settings: RuleSettings) -> tuple[list[bytes], list[int]]:
    e = RuleEngine(RULES, settings)
    out: list[bytes] = []
    late: list[int] = []
    for i, (host, v, t) in enumerate(samples):
        if e.process_metric("m", {"host": host}, v, t) == LATE:
            late.append(i)
        if i % 50 == 0:  # batches, as the worker reads them
            out += [encode(a) for a in e.advance()]
    return out + [encode(a) for a in e.advance()] + [encode(a) for a in e.flush()], late


def _out_of_order(samples: list[Sample]) -> int:
    newest = float("-inf")
    behind = 0
    for _, _, t in samples:
        behind += t < newest
        newest = max(newest, t)
    return behind


@pytest.mark.parametrize("seed", range(6))
def test_partition_watermarks_give_exactly_the_sorted_inputs_transitions(seed: int) -> None:
    in_order = _fleet(seed)
    arrived = _late(in_order, seed)
    assert _out_of_order(arrived) > 100  # the disorder is real
    expected, _ = _run(in_order, PARTITION)
    assert len(expected) > 100  # and the rules have plenty to decide
    out, late = _run(arrived, PARTITION)
    assert late == []
    assert out == expected


@pytest.mark.parametrize("seed", range(6))
def test_series_watermarks_refuse_at_most_a_series_first_late_sample(seed: int) -> None:
    # the default: windows close once every live series passed them, so a series' first
    # out-of-order sample may find its window decided (it is refused, to the `late`
    # topic); from then on the series is waited for by the allowed lateness
    arrived = _late(_fleet(seed), seed)
    out, late = _run(arrived, SETTINGS)
    first_behind: dict[str, int] = {}  # each host's first sample older than its newest
    newest: dict[str, float] = {}
    for i, (host, _, t) in enumerate(arrived):
        if t < newest.get(host, t):
            first_behind.setdefault(host, i)
        newest[host] = max(t, newest.get(host, t))
    assert all(first_behind.get(arrived[i][0]) == i for i in late)
    kept = [s for i, s in enumerate(arrived) if i not in set(late)]
    assert out == _run(sorted(kept, key=lambda s: s[2]), SETTINGS)[0]
