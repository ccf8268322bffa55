"""The default pack, replayed through `backtest`: it catches the faults it is meant to
catch and stays quiet on a healthy fleet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas import encode
from schemas.rules import load_rule_files
from streams.demo.workload import FAULTS, Fleet
from streams.processor.backtest import backtest

PACK = load_rule_files([Path("rules/default.yaml")])
START = datetime(2026, 1, 1, tzinfo=UTC)


def _record(fleet: Fleet, minutes: float) -> list[bytes]:
    lines: list[bytes] = []
    for tick in fleet.ticks(minutes):
        lines += [encode(m) for m in tick.metrics]
        lines += [encode(rec) for rec in tick.logs]
    return lines


def test_default_pack_catches_every_threshold_fault_and_nothing_else() -> None:
    result = backtest(PACK, _record(Fleet(START), 20))
    firing = {
        (a.rule, a.labels.get("host") or a.labels.get("service"))
        for a in result.transitions
        if a.status == "firing"
    }
    expected = {(f.expect_rule, f.target) for f in FAULTS if f.kind != "traffic_drop"}
    # the CPU saturation is also, rightly, a CPU warning
    assert firing == expected | {("cpu_high_warning", "web-03")}
    resolved = {a.fingerprint for a in result.transitions if a.status == "resolved"}
    fired = {a.fingerprint for a in result.transitions if a.status == "firing"}
    assert fired <= resolved, "every fault ends, so every alert resolves"
    assert result.invalid == []


def test_default_pack_is_quiet_on_a_healthy_fleet() -> None:
    result = backtest(PACK, _record(Fleet(START, faults=()), 20))
    assert [a for a in result.transitions if a.status == "firing"] == []


def test_memory_leak_fires_only_after_five_minutes_above_90() -> None:
    result = backtest(PACK, _record(Fleet(START), 20))
    mem = [a for a in result.transitions if a.rule == "memory_high"]
    pending, firing = mem[0], mem[1]
    assert (pending.status, firing.status) == ("pending", "firing")
    held = firing.window_end.timestamp() - pending.window_end.timestamp()  # type: ignore[union-attr]
    assert held == 300


def test_backtest_reports_bad_lines_without_stopping() -> None:
    lines = [
        b'{"name":"cpu_percent","value":"NaN","time":"2026-01-01T00:00:00Z"}',
        b"not json",
        *_record(Fleet(START, faults=()), 1),
    ]
    result = backtest(PACK, lines)
    assert [n for n, _ in result.invalid] == [1, 2]
    assert "MetricSample.value" in result.invalid[0][1]
    assert result.records == len(lines)
