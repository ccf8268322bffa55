"""Responder actions from Slack (buttons and the /incident slash command) as Commands."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Protocol

from schemas.commands import Command

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ActionError(ValueError):
    """The action cannot be turned into a command; the message is shown to the user."""


class ResponderDirectory(Protocol):
    def may_act(self, slack_user_id: str, incident_id: str) -> bool: ...


def from_interaction(payload: dict[str, Any], now: datetime) -> Command:
    """A block_actions payload from one of the incident message's buttons."""
    actions = payload.get("actions") or []
    if payload.get("type") != "block_actions" or not actions:
        raise ActionError("unsupported interaction")
    action = actions[0]
    name = str(action.get("action_id", "")).removeprefix("tocsin_")
    incident_id = str(action.get("value", ""))
    user = str((payload.get("user") or {}).get("id", ""))
    if name not in ("ack", "resolve", "escalate", "snooze") or not incident_id or not user:
        raise ActionError(f"unknown action {action.get('action_id')!r}")
    duration = timedelta(hours=1) if name == "snooze" else None
    return Command(action=name, incident_id=incident_id, actor=user, at=now,
                   origin="slack", duration=duration)  # fmt: skip


def from_slash(text: str, user: str, now: datetime) -> Command | None:
    """`/incident ack|resolve|escalate|snooze <dur>|note <text> <incident-id>`;
    `who` and `list` are answered without a command (None)."""
    parts = text.strip().split()
    if not parts:
        raise ActionError("usage: /incident ack|resolve|escalate|snooze <dur>|note <text> <id>")
    verb, args = parts[0].lower(), parts[1:]
    if verb in ("who", "list"):
        return None
    if verb in ("ack", "resolve", "escalate") and len(args) == 1:
        return Command(action=verb, incident_id=args[0], actor=user, at=now, origin="slack")
    if verb == "snooze" and len(args) == 2:
        m = _DURATION.match(args[0])
        if not m:
            raise ActionError(f"snooze: {args[0]!r} is not a duration like 30m or 2h")
        seconds = int(m.group(1)) * _UNIT[m.group(2)]
        return Command(action="snooze", incident_id=args[1], actor=user, at=now, origin="slack",
                       duration=timedelta(seconds=seconds))  # fmt: skip
    if verb == "note" and len(args) >= 2:
        return Command(action="note", incident_id=args[-1], actor=user, at=now, origin="slack",
                       text=" ".join(args[:-1]))  # fmt: skip
    raise ActionError(f"cannot parse {text!r}: try /incident ack inc-…")
