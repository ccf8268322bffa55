"""Slack buttons and the /incident command become Commands; who may act is decided
by the incident's team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.slack.actions import ActionError, Query, from_interaction, from_slash
from connectors.slack.auth import StaticDirectory

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def click(action_id: str, value: str = "inc-9", user: str = "U1") -> dict[str, object]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action_id, "value": value}],
    }


def test_buttons_become_commands() -> None:
    ack = from_interaction(click("tocsin_ack"), NOW)
    assert (ack.action, ack.incident_id, ack.actor, ack.origin) == ("ack", "inc-9", "U1", "slack")
    snooze = from_interaction(click("tocsin_snooze"), NOW)
    assert snooze.duration == timedelta(hours=1)
    with pytest.raises(ActionError, match="unknown button"):
        from_interaction(click("tocsin_delete_everything"), NOW)
    with pytest.raises(ActionError, match="no incident id"):
        from_interaction(click("tocsin_ack", value=""), NOW)
    with pytest.raises(ActionError, match="unsupported"):
        from_interaction({"type": "view_submission"}, NOW)


@pytest.mark.parametrize(
    ("text", "action", "extra"),
    [
        ("ack inc-9", "ack", {}),
        ("resolve inc-9", "resolve", {}),
        ("escalate inc-9", "escalate", {}),
        ("snooze 1h30m inc-9", "snooze", {"duration": timedelta(minutes=90)}),
        ("note rolled back deploy 42 inc-9", "note", {"text": "rolled back deploy 42"}),
    ],
)
def test_slash_command_verbs(text: str, action: str, extra: dict[str, object]) -> None:
    cmd = from_slash(text, "U1", NOW)
    assert not isinstance(cmd, Query)
    assert cmd.action == action and cmd.incident_id == "inc-9"
    for field, value in extra.items():
        assert getattr(cmd, field) == value


def test_slash_queries_and_mistakes() -> None:
    assert from_slash("list", "U1", NOW) == Query("list", None, "U1")
    assert from_slash("who inc-9", "U1", NOW) == Query("who", "inc-9", "U1")
    with pytest.raises(ActionError, match="not a duration"):
        from_slash("snooze soon inc-9", "U1", NOW)
    with pytest.raises(ActionError, match="duration"):
        from_slash("snooze 90d inc-9", "U1", NOW)  # beyond the 30-day bound of Command
    with pytest.raises(ActionError, match="usage"):
        from_slash("", "U1", NOW)
    with pytest.raises(ActionError, match="cannot read"):
        from_slash("ack", "U1", NOW)


def test_only_team_members_and_responders_may_act() -> None:
    d = StaticDirectory.of(anywhere=["U_SRE"], payments=["U_CAROL"], platform=["U_ALICE"])
    assert d.may_act("U_CAROL", "payments")
    assert not d.may_act("U_ALICE", "payments"), "a member of another team is refused"
    assert d.may_act("U_SRE", "payments"), "configured responders may act anywhere"
    assert not d.may_act("U_STRANGER", None)
    assert d.may_act("U_ALICE", None), "an incident no team owns: any known member"
