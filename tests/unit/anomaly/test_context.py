"""Pattern novelty (the experimental `likelihood.CONTEXT_IN` switch, off by default)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from processors.anomaly import context, likelihood
from processors.anomaly.context import Context
from processors.anomaly.likelihood import LikelihoodDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def pattern_scores(values: list[float]) -> tuple[list[float], Context]:
    """Each value's pattern novelty, in units of the running spread of the values before it."""
    c = Context()
    m = v = 0.0
    out = []
    for i, x in enumerate(values):
        out.append(c.update(x, math.sqrt(v) if v > 0.0 else 1e-9, i >= 20))
        rate = 1.0 / (i + 1)
        d = x - m
        m += rate * d
        v = (1.0 - rate) * (v + rate * d * d)
    return out, c


def cycle(n: int, shape: list[float], seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100.0 + shape[i % len(shape)] + rng.gauss(0.0, 0.5) for i in range(n)]


def test_a_break_in_a_learned_rhythm_is_novel_though_every_value_is_usual() -> None:
    for seed in (1, 2, 3):
        values = cycle(3000, [0.0, 10.0, 20.0, 10.0], seed)
        # the rhythm stalls at its middle value: no value leaves the usual range
        values[2500:2504] = [110.0, 110.0, 110.0, 110.0]
        scores, _ = pattern_scores(values)
        assert max(scores[500:2500]) < 0.3, seed
        assert max(scores[2500:2504]) > 0.5, seed


def test_the_table_stays_a_fixed_size_and_learns_a_new_rhythm() -> None:
    values = [110.0] * 20_000 + cycle(3000, [0.0, 10.0, 20.0, 10.0], 7)
    scores, c = pattern_scores(values)
    assert len(c.counts) == 4096 and max(c.counts) < 255
    assert max(scores[20_000:20_010]) > 0.3  # a flat line that starts moving is news
    assert max(scores[-500:]) < 0.3  # ... and its rhythm, once repeated, is not


@pytest.mark.parametrize(("mode", "scale"), [("alerts", "value"), ("score", "range")])
def test_with_the_switch_on_a_restored_series_scores_identically(
    monkeypatch: pytest.MonkeyPatch, mode: str, scale: str
) -> None:
    monkeypatch.setattr(likelihood, "CONTEXT_IN", mode)
    monkeypatch.setattr(context, "SCALE", scale)
    values = cycle(2000, [0.0, 10.0, 20.0, 10.0], 4)
    ats = [T0 + timedelta(minutes=5 * i) for i in range(len(values))]
    d = LikelihoodDetector("weekly")
    for v, at in zip(values[:1500], ats[:1500], strict=True):
        d.score(v, at)
    data = d.dump()
    assert len(data) < 16 * 1024 and d.memory_bytes() < 16 * 1024
    restored = LikelihoodDetector.load("weekly", data)
    for v, at in zip(values[1500:], ats[1500:], strict=True):
        assert restored.score(v, at) == d.score(v, at)
