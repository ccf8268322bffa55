"""Responder actions from Slack — the incident message's buttons and the slash command
``/incident ack|resolve|escalate|snooze <dur>|note <text>|who|list`` — parsed into
``schemas.Command`` (or a ``Query`` the gateway answers itself).

Grammar (the incident id comes last, so a note can hold any text)::

    /incident ack inc-42            /incident snooze 30m inc-42
    /incident resolve inc-42        /incident note rolled back the deploy inc-42
    /incident escalate inc-42       /incident who [inc-42]      /incident list
    /incident update identified [to:public,private] the database is failing over inc-42

``update`` posts a status-page update (investigating, identified, monitoring, resolved)
for the audiences after ``to:``; without it, for the private and internal pages only, so
nothing reaches a public page unless a responder says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from schemas.commands import Command
from schemas.errors import TocsinError
from schemas.types import parse_duration

USAGE = ("usage: /incident ack|resolve|escalate <id> · snooze <30m|2h> <id> · "
         "note <text> <id> · update <status> [to:public,private,internal] <text> <id> · "
         "who [<id>] · list")  # fmt: skip
UPDATE_STATUSES = ("investigating", "identified", "monitoring", "resolved")
DEFAULT_AUDIENCES = ["private", "internal"]
BUTTONS = {"tocsin_ack": "ack", "tocsin_resolve": "resolve", "tocsin_escalate": "escalate",
           "tocsin_snooze": "snooze"}  # fmt: skip
BUTTON_SNOOZE = timedelta(hours=1)
MAX_SNOOZE = timedelta(days=30)  # what schemas.Command accepts


class ActionError(TocsinError, ValueError):
    """The input cannot be turned into a command; the message is shown to the user."""


@dataclass(frozen=True, slots=True)
class Query:
    """``who``/``list``: answered from the gateway's view of open incidents."""

    kind: Literal["who", "list"]
    incident_id: str | None
    actor: str


def from_interaction(payload: dict[str, Any], now: datetime) -> Command:
    """A ``block_actions`` payload from one of the incident message's buttons."""
    actions = payload.get("actions") or []
    if payload.get("type") != "block_actions" or not actions or not isinstance(actions, list):
        raise ActionError("unsupported interaction: expected a button of an incident message")
    action = actions[0] if isinstance(actions[0], dict) else {}
    name = BUTTONS.get(str(action.get("action_id", "")))
    incident_id = str(action.get("value") or "").strip()
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    actor = str((user or {}).get("id") or "").strip()
    if name is None:
        raise ActionError(f"unknown button {str(action.get('action_id'))[:60]!r}")
    if not incident_id or not actor:
        raise ActionError("the button carries no incident id or no user")
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    click = action.get("action_ts")
    # one click, one command: Slack sends a Socket Mode request again when its answer was
    # late (Kafka slow to acknowledge), with the same click in it
    once = _event_id("button", str((team or {}).get("id")), actor, name, incident_id,
                     str(click)) if click else None  # fmt: skip
    return _command(name, incident_id, actor, now, event_id=once,
                    duration=BUTTON_SNOOZE if name == "snooze" else None)  # fmt: skip


def _event_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(("slack", *parts)).encode()).hexdigest()[:32]


def from_slash(text: str, actor: str, now: datetime, trigger_id: str = "") -> Command | Query:
    """``trigger_id`` names one invocation: the same command again (a Socket Mode request
    Slack sent again) is the same Command."""
    once = _event_id("slash", actor, trigger_id) if trigger_id else None
    parts = text.strip().split()
    if not parts or not actor:
        raise ActionError(USAGE)
    verb, args = parts[0].lower(), parts[1:]
    if verb == "list" and not args:
        return Query("list", None, actor)
    if verb == "who" and len(args) <= 1:
        return Query("who", args[0] if args else None, actor)
    if verb in ("ack", "acknowledge", "resolve", "escalate") and len(args) == 1:
        return _command("ack" if verb == "acknowledge" else verb, args[0], actor, now,
                        event_id=once)  # fmt: skip
    if verb == "snooze" and len(args) == 2:
        return _command("snooze", args[1], actor, now, duration=_snooze(args[0]),
                        event_id=once)  # fmt: skip
    if verb == "note" and len(args) >= 2:
        return _command("note", args[-1], actor, now, text=" ".join(args[:-1]), event_id=once)
    if verb == "update":
        return _update(args, actor, now, once)
    raise ActionError(f"cannot read {text.strip()[:80]!r}. {USAGE}")


def _update(args: list[str], actor: str, now: datetime, event_id: str | None) -> Command:
    usage = "update: /incident update <status> [to:public,private,internal] <text> <id>"
    if len(args) < 3:
        raise ActionError(usage)
    status, rest, incident_id = args[0].lower(), args[1:-1], args[-1]
    if status not in UPDATE_STATUSES:
        raise ActionError(f"update: {args[0][:40]!r} is not one of "
                          f"{', '.join(UPDATE_STATUSES)}")  # fmt: skip
    audiences = DEFAULT_AUDIENCES
    if rest and rest[0].lower().startswith("to:"):
        audiences = [a for a in rest[0][3:].lower().split(",") if a]
        rest = rest[1:]
    if not rest:
        raise ActionError(usage)
    update = {"incident_id": incident_id, "status": status, "message": " ".join(rest),
              "audiences": audiences, "author": actor}  # fmt: skip
    try:
        return Command.model_validate({"action": "status", "actor": actor, "at": now,
                                       "origin": "slack",
                                       "status": {"kind": "update", "update": update},
                                       **({"event_id": event_id} if event_id else {})})  # fmt: skip
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"][3:]) or "update"
        msg = first["msg"].removeprefix("Value error, ")
        raise ActionError(f"update: {where}: {msg} (audiences: public, private, "
                          "internal)") from exc  # fmt: skip


def _snooze(text: str) -> timedelta:
    shown = text[:40]
    try:
        duration = parse_duration(text)
    except OverflowError:  # more days than a timedelta holds
        duration = MAX_SNOOZE * 2
    except ValueError as exc:
        raise ActionError(f"snooze: {shown!r} is not a duration like 30m or 2h") from exc
    if not isinstance(duration, timedelta):
        raise ActionError(f"snooze: {shown!r} is not a duration like 30m or 2h")
    if duration > MAX_SNOOZE:
        raise ActionError(f"snooze: the duration {shown!r} is longer than the maximum "
                          "of 30d; snooze for 30d or less")  # fmt: skip
    if duration <= timedelta(0):
        raise ActionError(f"snooze: the duration {shown!r} must be longer than 0s")
    return duration


def _command(action: str, incident_id: str, actor: str, now: datetime, *,
             duration: timedelta | None = None, text: str = "",
             event_id: str | None = None) -> Command:  # fmt: skip
    try:
        return Command.model_validate({"action": action, "incident_id": incident_id,
                                       "actor": actor, "at": now, "origin": "slack",
                                       "duration": duration, "text": text,
                                       **({"event_id": event_id} if event_id else {})})  # fmt: skip
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or action
        raise ActionError(f"{action}: {where}: {first['msg']}") from exc


def origin(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(workspace id, channel id) a button or slash command came from: what decides its
    tenant. A button's payload nests them (``team.id``, ``channel.id``; ``user.team_id``
    in shared channels), a slash command's form has them flat."""

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    def nested(key: str) -> str | None:
        part = payload.get(key)
        return text(part.get("id")) if isinstance(part, dict) else None

    user = payload.get("user")
    team = text(payload.get("team_id")) or nested("team") or (
        text(user.get("team_id")) if isinstance(user, dict) else None)  # fmt: skip
    return team, text(payload.get("channel_id")) or nested("channel")
