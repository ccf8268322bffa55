"""A fault in evaluating one record costs that record, not the partition: it becomes a
dead letter naming the fault, and the records around it are evaluated as usual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from processors.rules.engine import RuleEngine
from schemas.rules import Rule, RuleSettings
from streams.processor.feed import EVALUATION_ERROR, FAILED, RawRecord, feed_metrics

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
RULE = Rule.model_validate({
    "name": "cpu_max", "signal": {"kind": "metric", "metric": "cpu"}, "aggregation": "max",
    "window": {"size": "10s"}, "condition": {"op": ">", "threshold": 90}, "group_by": ["host"],
})  # fmt: skip


def _record(host: str, value: float, t: float) -> RawRecord:
    at = datetime.fromtimestamp(T0 + t, UTC).isoformat()
    doc = {"name": "cpu", "value": value, "time": at, "labels": {"host": host}}
    return RawRecord(orjson.dumps(doc), T0 + t, host.encode())


def test_a_record_whose_evaluation_raises_is_dead_lettered_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = RuleEngine([RULE], RuleSettings(allowed_lateness=timedelta(0)))
    real = RuleEngine.process_metric

    def faulty(self: RuleEngine, name: str, labels: dict[str, str], value: float,
               *args: object) -> str | None:  # fmt: skip
        if value == 13.0:  # stands for a fault of tocsin's own that this record triggers
            raise ZeroDivisionError("float floor division by zero")
        return real(self, name, labels, value, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(RuleEngine, "process_metric", faulty)
    records = [_record("web-1", 95.0, 0), _record("web-2", 13.0, 1), _record("web-3", 97.0, 2)]
    with capture_logs() as logs:
        rejected = feed_metrics(e, records, timedelta(minutes=5))
    ((record, verdict),) = rejected
    assert record is records[1]
    assert (verdict.outcome, verdict.reason) == (FAILED, EVALUATION_ERROR)
    assert "ZeroDivisionError: float floor division by zero" in verdict.error
    assert [entry["event"] for entry in logs] == ["evaluation_failed"]
    e.process_metric("cpu", {"host": "web-1"}, 1.0, T0 + 30)  # the windows close
    fired = [a.labels["host"] for a in e.advance() if a.status == "firing"]
    assert sorted(fired) == ["web-1", "web-3"]


def test_a_window_whose_close_raises_is_skipped_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import processors.rules.closing as closing

    real = closing._window_values

    def faulty(panes: Any, *args: Any) -> Any:
        if any(acc.result() == 13.0 for pane in panes for acc in pane.values()):
            raise ValueError("stands for a fault of tocsin's own in closing this window")
        return real(panes, *args)

    monkeypatch.setattr(closing, "_window_values", faulty)
    other = RULE.model_copy(update={"name": "cpu_max_too"})
    e = RuleEngine([RULE, other], RuleSettings(allowed_lateness=timedelta(0)))
    seen: list[tuple[str, str, float]] = []
    # 10 s windows of one host: the second holds the faulty value
    for t, value in [(0, 95.0), (10, 13.0), (20, 1.0), (30, 99.0), (40, 1.0)]:
        e.process_metric("cpu", {"host": "web-1"}, value, T0 + t)
        seen += [(a.rule, a.status, (a.window_start or a.starts_at).timestamp() - T0)
                 for a in e.advance()]  # fmt: skip
    # the faulty window decided nothing and was reported once per rule; the windows
    # after it resolved and fired again as usual
    for rule in ("cpu_max", "cpu_max_too"):
        assert [(s, t) for r, s, t in seen if r == rule] == [
            ("firing", 0.0),
            ("resolved", 20.0),
            ("firing", 30.0),
        ]
    assert [rule for rule, _ in e.faults] == ["cpu_max", "cpu_max_too"]
    assert "window" in e.faults[0][1] and "ValueError" in e.faults[0][1]
