"""What tocsin's Zabbix media type (connectors/zabbix/tocsin.js) posts, as an Alert.

One request is one Zabbix message: a problem, an update of a problem (acknowledged,
commented, severity changed, closed, suppressed), or its recovery. The media type sends
Zabbix's macros as they expanded; a macro that did not expand in this kind of message
(``{EVENT.RECOVERY.ID}`` in a problem) arrives as its own name and counts as absent.

- fingerprint: ``zabbix:<event id>`` (``zabbix:<instance>:<event id>`` when the media
  type names its Zabbix instance): the problem event's id, which its updates and its
  recovery carry too, so they all land on one alert;
- problem -> firing, recovery -> resolved; an update -> a firing repeat annotated with
  what was done, by whom and the message (tocsin's own incident acknowledgement stays
  with responders in tocsin);
- severity: Zabbix's severity number (names can be renamed in Zabbix, numbers cannot):
  0 not classified and 1 information -> info, 2 warning -> warning, 3 average and 4 high
  -> error, 5 disaster -> critical, as Zabbix's own PagerDuty media type maps them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from connectors.sources.tags import merge_labels
from schemas.alerts import Alert, Severity
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.types import MAX_TEXT

MODEL = "ZabbixEvent"
MAX_EVENT = 256 * 1024
"""Bytes of one message: Zabbix sends one problem per request; a trigger's description
and tags fit many times over."""
MAX_TAGS = 256
SEVERITY: dict[int, Severity] = {0: "info", 1: "info", 2: "warning", 3: "error",
                                 4: "error", 5: "critical"}  # fmt: skip
_MACRO = re.compile(r"^\{[A-Z0-9_.$]+\}$")
_WEB = re.compile(r"^https?://", re.IGNORECASE)
Kind = Literal["problem", "update", "recovery"]


def _absent(value: Any) -> Any:
    """An unexpanded macro, or nothing, counts as no value."""
    if value is None or (isinstance(value, str) and _MACRO.match(value.strip())):
        return ""
    return value


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _macros(cls, value: Any) -> Any:
        return _absent(value)


class _Tag(_Base):
    tag: str = Field(max_length=1024)
    value: str = Field(default="", max_length=4096)


class _Event(_Base):
    id: str = Field(pattern=r"^[0-9]{1,20}$")
    value: Literal["0", "1"]
    update: Literal["", "0", "1"] = ""
    source: str = Field(default="", max_length=8)
    name: str = Field(default="", max_length=65536)
    severity: str = Field(default="", max_length=256)
    nseverity: Literal["", "0", "1", "2", "3", "4", "5"] = ""
    time: AwareDatetime | Literal[""] = ""
    recovery_id: str = Field(default="", max_length=20)
    recovery_time: AwareDatetime | Literal[""] = ""
    update_action: str = Field(default="", max_length=4096)
    update_user: str = Field(default="", max_length=1024)
    update_message: str = Field(default="", max_length=65536)
    update_time: AwareDatetime | Literal[""] = ""
    ack: str = Field(default="", max_length=16)
    opdata: str = Field(default="", max_length=65536)
    tags: list[_Tag] | Literal[""] = Field(default="", max_length=MAX_TAGS)


class _Host(_Base):
    name: str = Field(default="", max_length=1024)
    host: str = Field(default="", max_length=1024)
    ip: str = Field(default="", max_length=1024)


class _Trigger(_Base):
    id: str = Field(default="", max_length=20)
    name: str = Field(default="", max_length=65536)
    description: str = Field(default="", max_length=65536)
    url: str = Field(default="", max_length=8192)


class ZabbixEvent(_Base):
    version: Literal["1"] = "1"
    instance: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.\-]*$")
    zabbix_url: str = Field(default="", max_length=1024)
    event: _Event
    host: _Host = Field(default_factory=_Host)
    trigger: _Trigger = Field(default_factory=_Trigger)

    @property
    def kind(self) -> Kind:
        if self.event.value == "0":
            return "recovery"
        return "update" if self.event.update == "1" else "problem"


def decode_zabbix(data: bytes, now: datetime) -> tuple[ZabbixEvent, Alert]:
    """The message and the alert transition it means, or DecodeError naming the field."""
    if len(data) > MAX_EVENT:
        raise DecodeError(f"{MODEL}: the message is {len(data)} bytes, over {MAX_EVENT}",
                          reason="too_large", model=MODEL)  # fmt: skip
    try:
        event = ZabbixEvent.model_validate_json(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors(include_url=False)}
        raise DecodeError(describe_validation_error(MODEL, exc),
                          reason="invalid_json" if "json_invalid" in kinds else "validation",
                          model=MODEL) from exc  # fmt: skip
    if event.event.source not in ("", "0"):
        raise DecodeError(f"{MODEL}.event.source: only trigger events (source 0) become "
                          f"alerts, got {event.event.source!r}; send the media type from "
                          "trigger actions only", reason="unmapped", model=MODEL)  # fmt: skip
    return event, _alert(event, now)


def severity_of(event: ZabbixEvent) -> Severity:
    if event.event.nseverity:
        return SEVERITY[int(event.event.nseverity)]
    by_name = {"not classified": 0, "information": 1, "warning": 2, "average": 3,
               "high": 4, "disaster": 5}  # fmt: skip
    number = by_name.get(event.event.severity.lower())
    if number is None:
        raise DecodeError(f"{MODEL}.event.nseverity: missing, and event.severity "
                          f"{event.event.severity[:40]!r} is none of Zabbix's default names",
                          reason="validation", model=MODEL)  # fmt: skip
    return SEVERITY[number]


def _alert(z: ZabbixEvent, now: datetime) -> Alert:
    ev, host, trig = z.event, z.host, z.trigger
    kind = z.kind
    hostname = host.name or host.host
    title = ev.name or trig.name
    if not title:
        raise DecodeError(f"{MODEL}.event.name: empty, and so is trigger.name: a problem "
                          "needs a name", reason="validation", model=MODEL)  # fmt: skip
    starts = min(ev.time or now, now)
    ends: datetime | None = None
    if kind == "recovery":
        ends = max(min(ev.recovery_time or now, now), starts)
    labels = merge_labels(
        {"alertname": trig.name or title, "host": hostname, "zabbix_host": host.host,
         "zabbix_trigger_id": trig.id, "zabbix_event_id": ev.id,
         "zabbix_severity": ev.severity, "zabbix_instance": z.instance},
        ((t.tag, t.value) for t in (ev.tags or [])),
    )  # fmt: skip
    notes = {"zabbix_action": kind, "description": trig.description, "opdata": ev.opdata,
             "host_ip": host.ip, "zabbix_acknowledged": ev.ack,
             "zabbix_recovery_event_id": ev.recovery_id if kind == "recovery" else "",
             "zabbix_url": _event_url(z)}  # fmt: skip
    if kind == "update":
        when = ev.update_time.isoformat() if ev.update_time else ""
        notes |= {"zabbix_update_action": ev.update_action,
                  "zabbix_update_user": ev.update_user,
                  "zabbix_update_message": ev.update_message,
                  "zabbix_update_time": when}  # fmt: skip
    fields: dict[str, Any] = {
        "fingerprint": f"zabbix:{z.instance}:{ev.id}" if z.instance else f"zabbix:{ev.id}",
        "status": "resolved" if kind == "recovery" else "firing",
        "rule": (trig.name or title)[:256],
        "source": "zabbix",
        "severity": severity_of(z),
        "labels": labels,
        "annotations": {k: v[:MAX_TEXT] for k, v in notes.items() if v},
        "summary": (title if hostname in title else f"{title} on {hostname}")[:MAX_TEXT],
        "runbook_url": trig.url[:1024] if _WEB.match(trig.url) else None,
        "starts_at": starts,
        "ends_at": ends,
    }
    try:
        return Alert.model_validate(fields)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error("Alert", exc), reason="validation",
                          model=MODEL) from exc  # fmt: skip


def _event_url(z: ZabbixEvent) -> str:
    """The problem's page in Zabbix's frontend, when the media type knows its address."""
    if not _WEB.match(z.zabbix_url) or not z.trigger.id:
        return ""
    base = z.zabbix_url.rstrip("/")
    return f"{base}/tr_events.php?triggerid={z.trigger.id}&eventid={z.event.id}"


def example_payload(kind: Kind = "problem") -> bytes:
    """What the media type sends for a problem of a 'High' trigger (docs and tests)."""
    doc: dict[str, Any] = {
        "version": "1", "instance": "", "zabbix_url": "https://zabbix.example.com",
        "event": {"id": "4242", "value": "0" if kind == "recovery" else "1",
                  "update": "1" if kind == "update" else "0", "source": "0",
                  "name": "High CPU utilization", "severity": "High", "nseverity": "4",
                  "time": "2026-01-01T00:00:00.000Z",
                  "recovery_id": "4250" if kind == "recovery" else "{EVENT.RECOVERY.ID}",
                  "recovery_time": "2026-01-01T00:10:00.000Z" if kind == "recovery" else "",
                  "update_action": "acknowledged" if kind == "update" else "",
                  "update_user": "Zabbix Administrator (Admin)" if kind == "update" else "",
                  "update_message": "looking" if kind == "update" else "",
                  "ack": "Yes" if kind == "update" else "No", "opdata": "CPU 97%",
                  "tags": [{"tag": "service", "value": "checkout"},
                           {"tag": "scope", "value": "performance"}]},
        "host": {"name": "web-01", "host": "web-01", "ip": "10.0.0.1"},
        "trigger": {"id": "17", "name": "High CPU utilization",
                    "description": "CPU above 90% for 5 minutes",
                    "url": "https://runbooks.example.com/cpu"},
    }  # fmt: skip
    return orjson.dumps(doc)
