"""A flood of bad records is written and counted whole, and logged a line per source
and reason per half minute, each line saying how many it stands for."""

from __future__ import annotations

import pytest
import structlog

from streams.logs import Throttle
from streams.metrics import WorkerMetrics
from streams.runtime import deadletters
from streams.runtime.deadletters import dead_letter


def test_a_flood_of_bad_records_is_counted_whole_and_logged_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr(deadletters, "_THROTTLE", Throttle(every_s=30, clock=lambda: now[0]))
    metrics = WorkerMetrics()

    def flood(n: int, reason: str = "validation") -> list[dict[str, object]]:
        with structlog.testing.capture_logs() as logged:
            letters = [dead_letter(metrics, source="metrics", value=b"{bad", reason=reason,
                                   error="value: not a number", stage="validate",
                                   worker="processor") for _ in range(n)]  # fmt: skip
        assert all(letters), "every record still becomes a dead letter"
        return [x for x in logged if x["event"] == "dead_letter"]

    first = flood(1000)
    assert [x["more_like_this"] for x in first] == [0]
    assert flood(5, "future_timestamp")[0]["reason"] == "future_timestamp", "a kind of its own"
    now[0] = 31.0
    [later] = flood(10)
    assert later["more_like_this"] == 999, "the line counts the ones not logged"
    counted = metrics.registry.get_sample_value(
        "tocsin_dead_letters_total", {"topic": "metrics", "reason": "validation"}
    )
    assert counted == 1010
