"""The default pack with the example config: CPU at 94% crosses the warning and the
critical threshold, and the on-call is paged once, for the critical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processors.incidents.lifecycle import on_alert, on_tick
from processors.incidents.state import GroupState, Route
from processors.incidents.suppression import Suppressions
from schemas import Alert, ConfigError, encode
from schemas.config import load_config
from schemas.rules import load_rule_files
from streams.demo.workload import FAULTS, Fleet
from streams.processor.backtest import backtest

PACK = load_rule_files([Path("rules/default.yaml")])
CFG = load_config([Path("examples/config")])
START = datetime(2026, 2, 2, 15, 0, tzinfo=UTC)  # somebody is on call for payments


def _cpu_alerts() -> list[Alert]:
    lines: list[bytes] = []
    for tick in Fleet(START).ticks(20):
        lines += [encode(m) for m in tick.metrics]
    result = backtest(PACK, lines)
    return [a for a in result.transitions
            if a.labels.get("signal") == "cpu" and a.status != "pending"]  # fmt: skip


def _pages(alerts: list[Alert]) -> dict[str, list[tuple[str, str]]]:
    """Feed the alerts as the agents do (a source known to every group at once), tick
    every group every 10 s, and return each rule's first pages."""
    sup = Suppressions.from_config(CFG)
    groups: dict[str, GroupState] = {}
    pages: dict[str, list[tuple[str, str]]] = {}
    now = alerts[0].produced_at
    end = alerts[-1].produced_at + timedelta(minutes=2)
    queue = sorted(alerts, key=lambda a: a.produced_at)
    while now <= end:
        while queue and queue[0].produced_at <= now:
            a = queue.pop(0)
            if sup.is_source(a.labels):
                sup.set_source(a.fingerprint, a.labels if a.status == "firing" else None)
            g = groups.setdefault(a.rule, GroupState(group_key=a.rule, route=Route(
                service="checkout", team="payments", policy="payments-default")))  # fmt: skip
            out = on_alert(g, a, now, CFG, sup)
            pages.setdefault(a.rule, []).extend(
                (n.channel, n.target) for n in out.notifications if n.kind == "trigger"
            )
        for rule, g in groups.items():
            out = on_tick(g, now, CFG, sup)
            pages[rule].extend((n.channel, n.target) for n in out.notifications
                               if n.kind == "trigger")  # fmt: skip
        now += timedelta(seconds=10)
    return pages


def test_cpu_saturation_pages_once_the_warning_is_inhibited() -> None:
    alerts = _cpu_alerts()
    fired = {(a.rule, a.labels["host"]) for a in alerts if a.status == "firing"}
    assert fired == {("cpu_saturation_critical", "web-03"), ("cpu_high_warning", "web-03")}
    pages = _pages(alerts)
    # the on-call's DM and the team channel, once each
    assert [c for c, _ in pages["cpu_saturation_critical"]] == ["slack_dm", "slack"]
    assert pages["cpu_high_warning"] == []


def test_the_warning_pages_when_no_critical_fires() -> None:
    alerts = [a for a in _cpu_alerts() if a.rule == "cpu_high_warning"]
    assert len(_pages(alerts)["cpu_high_warning"]) == 2


def test_the_demo_cpu_fault_crosses_both_thresholds_in_the_same_window() -> None:
    # the demo's story relies on it: a warning firing first would page before the critical
    (cpu,) = [f for f in FAULTS if f.kind == "cpu"]
    firing = [a for a in _cpu_alerts() if a.status == "firing"]
    assert {a.produced_at for a in firing} == {START + timedelta(minutes=cpu.start_min + 6)}


def test_a_severity_label_must_agree_with_the_rule(tmp_path: Path) -> None:
    text = Path("rules/default.yaml").read_text()
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("labels: {signal: cpu, severity: warning}",
                                "labels: {signal: cpu, severity: critical}"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"rule cpu_high_warning: labels\.severity: 'critical' "
                       r"differs from the rule's severity 'warning'"):  # fmt: skip
        load_rule_files([bad])
