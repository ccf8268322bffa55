"""Slack buttons and the /incident command become Commands; who may act is decided
by the incident's team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.slack.actions import ActionError, Query, from_interaction, from_slash
from connectors.slack.auth import StaticDirectory
from schemas.commands import Command

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


def test_one_click_or_one_slash_command_is_one_command_however_often_slack_sends_it() -> None:
    # Slack sends a Socket Mode request again when its answer came late: the same click
    # (action_ts) or invocation (trigger_id) must be the same Command, applied once
    def at(ts: str, action_id: str = "tocsin_escalate") -> dict[str, object]:
        payload = click(action_id)
        payload["team"] = {"id": "T1"}
        payload["actions"][0]["action_ts"] = ts  # type: ignore[index]
        return payload

    first, again = from_interaction(at("1.1"), NOW), from_interaction(at("1.1"), NOW)
    assert first.event_id == again.event_id
    assert from_interaction(at("1.2"), NOW).event_id != first.event_id, "a second click"
    assert from_interaction(at("1.1", "tocsin_ack"), NOW).event_id != first.event_id
    assert from_interaction(click("tocsin_ack"), NOW).event_id != from_interaction(
        click("tocsin_ack"), NOW).event_id, "no click time: nothing to recognise it by"  # fmt: skip
    for text in ("note rolled back inc-9", "escalate inc-9", "update identified db inc-9"):
        a, b = from_slash(text, "U1", NOW, "trig-1"), from_slash(text, "U1", NOW, "trig-1")
        assert isinstance(a, Command) and isinstance(b, Command)
        assert a.event_id == b.event_id, text
        other = from_slash(text, "U1", NOW, "trig-2")
        assert isinstance(other, Command) and other.event_id != a.event_id


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
