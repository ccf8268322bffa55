"""A PagerDuty Events API v2-compatible intake: any tool that pages PagerDuty can
page tocsin by changing one URL.

Same fields, same answers: 202 ``{"status": "success", "message": "Event processed",
"dedup_key": ...}``; 400 ``{"status": "invalid event", "message": "Event object is
invalid", "errors": [...]}``. ``dedup_key`` becomes the alert fingerprint (generated
for a trigger without one, and returned, as PagerDuty does).

``acknowledge`` has no alert-level meaning in tocsin (responders acknowledge incidents),
so it is recorded as a firing transition annotated ``pagerduty_action=acknowledge``:
kept in the stream, never dropped, and a repeat for the incident agents.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.alerts import Alert
from schemas.errors import DecodeError
from schemas.types import MAX_LABEL_VALUE


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class _Link(BaseModel):
    model_config = ConfigDict(extra="ignore")
    href: str
    text: str | None = None


class PagerDutyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    routing_key: str = Field(min_length=1, max_length=128)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, max_length=255)
    payload: _Payload | None = None
    links: list[_Link] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


def decode_pagerduty(data: bytes, now: datetime) -> tuple[PagerDutyEvent, Alert]:
    """The event (for its routing key and dedup key) and the alert transition it means."""
    try:
        event = PagerDutyEvent.model_validate_json(data)
    except ValidationError as exc:
        raise DecodeError("; ".join(_errors(exc)), reason="validation", model="PagerDutyEvent"
                          ) from exc  # fmt: skip
    if event.event_action == "trigger" and event.payload is None:
        raise DecodeError("payload: required for event_action 'trigger'",
                          reason="validation", model="PagerDutyEvent")  # fmt: skip
    if event.event_action != "trigger" and not event.dedup_key:
        raise DecodeError(f"dedup_key: required for event_action {event.event_action!r}",
                          reason="validation", model="PagerDutyEvent")  # fmt: skip
    key = event.dedup_key or os.urandom(16).hex()
    event = event.model_copy(update={"dedup_key": key})
    return event, _alert(event, key, now)


def _alert(event: PagerDutyEvent, key: str, now: datetime) -> Alert:
    p = event.payload
    labels = _labels(key, p)
    notes = _details(p.custom_details) if p is not None and p.custom_details is not None else {}
    for i, link in enumerate(event.links[:8]):
        notes[f"link_{i}"] = f"{link.text or link.href} {link.href}"[:8000]
    if event.event_action == "acknowledge":
        notes["pagerduty_action"] = "acknowledge"
    starts = (p.timestamp if p is not None and p.timestamp and p.timestamp.tzinfo else None) or now
    fields: dict[str, Any] = {
        "fingerprint": key[:128],
        "status": "resolved" if event.event_action == "resolve" else "firing",
        "rule": (p.class_ if p is not None and p.class_ else None) or "pagerduty",
        "source": "pagerduty",
        "severity": p.severity if p is not None else "warning",
        "labels": labels,
        "annotations": notes,
        "summary": p.summary if p is not None else "",
        "runbook_url": event.links[0].href[:1024] if event.links else None,
        "starts_at": min(starts, now),
        "ends_at": now if event.event_action == "resolve" else None,
    }
    try:
        return Alert.model_validate(fields)
    except ValidationError as exc:
        raise DecodeError("; ".join(_errors(exc)), reason="validation", model="PagerDutyEvent"
                          ) from exc  # fmt: skip


def _labels(key: str, p: _Payload | None) -> dict[str, str]:
    """``alertname`` is the dedup_key: PagerDuty opens one incident per dedup_key unless
    the service groups alerts, and the default grouping (alertname, service) does the
    same here. Only the dedup_key may shape it, since a resolve usually has no payload
    and must land in the trigger's group."""
    labels = {"alertname": key, "dedup_key": key}
    if p is not None:
        labels["source"] = p.source
        labels["severity"] = p.severity
        for name, value in (("component", p.component), ("group", p.group),
                            ("class", p.class_)):  # fmt: skip
            if value:
                labels[name] = value[:MAX_LABEL_VALUE]
    return labels


DETAILS = 16  # flattened custom_details fields kept as annotations
DETAIL_CHARS = 1024
DETAIL_DEPTH = 8


def _details(details: Any) -> dict[str, str]:
    """custom_details as ``details.<path>`` annotations (strings, bounded in number, length
    and depth), plus the whole object as JSON (bounded) so nothing is lost to the bounds."""
    flat: dict[str, str] = {}
    _flatten(details, "details", flat, 0)
    notes = dict(list(flat.items())[:DETAILS])
    notes["custom_details"] = _json(details)[:8000]
    return notes


def _flatten(value: Any, path: str, out: dict[str, str], depth: int) -> bool:
    """False once the budget is spent (one entry past it, to know it was exceeded)."""
    if len(out) > DETAILS:
        return False
    if isinstance(value, dict) and value and depth < DETAIL_DEPTH:
        return all(_flatten(v, f"{path}.{k}", out, depth + 1) for k, v in value.items())
    if isinstance(value, list) and value and depth < DETAIL_DEPTH:
        return all(_flatten(v, f"{path}.{i}", out, depth + 1) for i, v in enumerate(value))
    text = value if isinstance(value, str) else _json(value)
    out.setdefault(path[:256], text[:DETAIL_CHARS])
    return True


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits: JSON allows it, orjson does not
        try:
            return json.dumps(value)
        except ValueError:  # beyond Python's own int-to-text limit
            return "(too large to show)"


def _errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False)[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        out.append(f"{loc}: {err['msg']}")
    return out
