"""MTTA and MTTR as an operator reads them: one observation per acknowledgement and per
resolution, whatever else happens to the incident afterwards."""

from __future__ import annotations

from datetime import timedelta

from processors.incidents.lifecycle import on_alert, on_command
from schemas import Command, Incident
from streams.agents.metrics import AgentMetrics
from tests.unit.incidents.test_lifecycle import CFG, T0, alert, group

LABELS = {"service": "search", "team": "platform"}


def count(m: AgentMetrics, name: str) -> float:
    return m.registry.get_sample_value(f"tocsin_time_to_{name}_seconds_count", LABELS) or 0.0


def total(m: AgentMetrics, name: str) -> float:
    return m.registry.get_sample_value(f"tocsin_time_to_{name}_seconds_sum", LABELS) or 0.0


def cmd(action: str, minutes: int, incident_id: str | None, **extra: object) -> Command:
    return Command(action=action, incident_id=incident_id, actor="alice",  # type: ignore[arg-type]
                   at=T0 + timedelta(minutes=minutes), **extra)  # type: ignore[arg-type]  # fmt: skip


def test_one_ack_is_observed_once_however_many_snapshots_follow() -> None:
    m, g = AgentMetrics(), group()
    m.record(on_alert(g, alert(), T0, CFG).effects)
    acked = on_command(g, cmd("ack", 3, g.incident_id), T0 + timedelta(minutes=3), CFG)
    m.record(acked.effects)
    for i in range(2, 6):  # new alerts join the acknowledged incident: a snapshot each
        out = on_alert(g, alert(fp=f"f{i}"), T0 + timedelta(minutes=3 + i), CFG)
        assert [e.status for e in out.effects if isinstance(e, Incident)] == ["acknowledged"]
        m.record(out.effects)
    assert count(m, "acknowledge") == 1 and total(m, "acknowledge") == 180
    m.record(acked.effects)  # the same ledger entry again: a batch replayed after a rebalance
    assert count(m, "acknowledge") == 1
    resolved = on_command(g, cmd("resolve", 20, g.incident_id), T0 + timedelta(minutes=20), CFG)
    m.record(resolved.effects)
    m.record(resolved.effects)
    assert count(m, "resolve") == 1 and total(m, "resolve") == 1200
    assert count(m, "acknowledge") == 1


def test_a_snooze_acknowledges_and_a_later_ack_is_not_a_second_one() -> None:
    m, g = AgentMetrics(), group()
    m.record(on_alert(g, alert(), T0, CFG).effects)
    snooze = cmd("snooze", 2, g.incident_id, duration=timedelta(hours=1))
    m.record(on_command(g, snooze, T0 + timedelta(minutes=2), CFG).effects)
    m.record(on_command(g, cmd("escalate", 4, g.incident_id), T0 + timedelta(minutes=4),
                        CFG).effects)  # fmt: skip
    m.record(on_command(g, cmd("ack", 5, g.incident_id), T0 + timedelta(minutes=5), CFG).effects)
    assert count(m, "acknowledge") == 1 and total(m, "acknowledge") == 120


def test_a_reopened_incident_is_timed_from_its_reopening() -> None:
    m, g = AgentMetrics(), group()
    m.record(on_alert(g, alert(), T0, CFG).effects)
    m.record(on_command(g, cmd("ack", 1, g.incident_id), T0 + timedelta(minutes=1), CFG).effects)
    m.record(on_alert(g, alert(status="resolved", at=T0 + timedelta(minutes=2)),
                      T0 + timedelta(minutes=2), CFG).effects)  # fmt: skip
    reopened = on_alert(g, alert(at=T0 + timedelta(minutes=10)), T0 + timedelta(minutes=10), CFG)
    assert "reopened" in [e.kind for e in reopened.events]
    m.record(reopened.effects)
    m.record(on_command(g, cmd("ack", 14, g.incident_id), T0 + timedelta(minutes=14),
                        CFG).effects)  # fmt: skip
    assert count(m, "acknowledge") == 2 and total(m, "acknowledge") == 60 + 240
    assert count(m, "resolve") == 1 and total(m, "resolve") == 120


def test_an_incident_opened_before_a_restart_is_timed_from_its_snapshot() -> None:
    g = group()
    on_alert(g, alert(), T0, CFG)
    m = AgentMetrics()  # a new process: it never saw the opening
    m.record(on_command(g, cmd("ack", 7, g.incident_id), T0 + timedelta(minutes=7), CFG).effects)
    assert count(m, "acknowledge") == 1 and total(m, "acknowledge") == 420
