"""Heartbeat pings: what the `heartbeats` topic carries besides the agents' timer ticks."""

from __future__ import annotations

from typing import Literal

from schemas.config.heartbeats import HeartbeatName
from schemas.envelope import Event
from schemas.types import Fingerprint, ShortText


class HeartbeatPing(Event):
    """One check-in of a heartbeat, at ``produced_at`` (the gateway's or the router's
    clock when it arrived): over HTTP, or an alert its ``alert`` matchers matched."""

    name: HeartbeatName
    via: Literal["http", "alert"] = "http"
    fingerprint: Fingerprint | None = None
    message: ShortText = ""


def heartbeat_key(tenant: str, name: str) -> bytes:
    """The `heartbeats` key: one owner per tenant and heartbeat."""
    return f"{tenant}/{name}".encode()
