"""Every escalation target kind pages through its own channel; the config check refuses
a target the notifier could never deliver to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from processors.incidents.lifecycle import on_alert, on_tick
from processors.incidents.paging import resolve_target
from processors.incidents.state import GroupState, Route
from schemas import Alert, ConfigError
from schemas.config import Config, load_config

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
POLICY = {
    "id": "everywhere",
    "levels": [
        {"timeout": "5m", "targets": [{"kind": "pagerduty", "ref": "payments-pd"},
                                      {"kind": "ilert", "ref": "payments-ilert"}]},
        {"timeout": "5m", "targets": [{"kind": "webhook", "ref": "runbook-bot"},
                                      {"kind": "slack", "ref": "#war-room"},
                                      {"kind": "slack", "ref": "C0123ABCD"},
                                      {"kind": "pager", "ref": "legacy-pd"}]},
    ],
}  # fmt: skip


def _config(tmp_path: Path, policy: dict[str, object]) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"escalation_policies": [policy],
                                    "route": {"escalation_policy": policy["id"]}}))  # fmt: skip
    return load_config([path])


def _alert(status: str = "firing", at: datetime = T0) -> Alert:
    return Alert(fingerprint="f1", status=status, rule="r", severity="critical",  # type: ignore[arg-type]
                 labels={"alertname": "r"}, starts_at=at,
                 ends_at=at if status == "resolved" else None)  # fmt: skip


def test_each_kind_pages_its_own_channel_level_by_level_and_hears_the_resolution(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path, POLICY)
    g = GroupState(group_key="r", route=Route(policy="everywhere"))
    first = on_alert(g, _alert(), T0, cfg)
    assert [(n.channel, n.target) for n in first.notifications] == [
        ("pagerduty", "payments-pd"), ("ilert", "payments-ilert")]  # fmt: skip
    second = on_tick(g, T0 + timedelta(minutes=5), cfg)
    assert [(n.channel, n.target) for n in second.notifications] == [
        ("webhook", "runbook-bot"), ("slack", "#war-room"), ("slack", "C0123ABCD"),
        ("pagerduty", "legacy-pd")]  # fmt: skip
    done = on_alert(g, _alert("resolved", T0 + timedelta(minutes=7)),
                    T0 + timedelta(minutes=7), cfg)  # fmt: skip
    told = {(n.kind, n.channel, n.target) for n in done.notifications}
    assert {c for _, c, _ in told} == {"pagerduty", "ilert", "webhook", "slack"}
    assert {k for k, _, _ in told} == {"resolve"}
    assert len(told) == 6, "every target ever paged hears the resolution, once"


def test_a_slack_channel_name_without_hash_is_looked_up_by_name(tmp_path: Path) -> None:
    cfg = _config(tmp_path, POLICY)
    assert resolve_target("slack", "war-room", T0, cfg) == [("slack", "#war-room")]
    assert resolve_target("slack", "G0123ABCD", T0, cfg) == [("slack", "G0123ABCD")]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"kind": "email", "ref": "x"}, "targets[0].kind: Input should be 'user'"),
        ({"kind": "slack", "ref": "#War Room"}, "is not a Slack channel"),
        ({"kind": "webhook", "ref": "https://example.com/hook"}, "is not an id of webhook"),
        ({"kind": "ilert", "ref": "Payments"}, "is not an id of ilert"),
    ],
)
def test_config_check_names_a_target_that_cannot_be_paged(
    tmp_path: Path, target: dict[str, str], message: str
) -> None:
    policy = {"id": "p", "levels": [{"targets": [target]}]}
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, policy)
    text = str(err.value)
    assert "escalation_policies[0].levels[0].targets[0]" in text and message in text, text
    assert "c.yaml" in text
