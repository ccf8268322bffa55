"""What tocsin's Checkmk notification plugin (connectors/checkmk/tocsin.py) posts, as
Alerts.

The plugin sends Checkmk's notification context as Checkmk gives it (the ``NOTIFY_*``
variables without their prefix, a bulk's contexts one by one) in
``{"version": "1", "notifications": [...]}``; the mapping lives here, where it is
tested, so the plugin stays a small script with nothing to install.

- fingerprint: ``checkmk:`` and a digest of site, host and service, so a problem, its
  acknowledgement, flapping and downtime notices and its recovery land on one alert;
- state: DOWN and CRIT (CRITICAL) -> critical, UNREACHABLE and UNKN (UNKNOWN) -> error,
  WARN (WARNING) -> warning; UP and OK -> resolved (so is a RECOVERY);
- notification types: PROBLEM and RECOVERY carry the state; ACKNOWLEDGEMENT,
  FLAPPINGSTART/STOP/DISABLED, DOWNTIMESTART/END/CANCELLED and CUSTOM carry the state
  the object is in, annotated ``checkmk_notification`` (with author and comment): a
  repeat of the open alert while it is in a problem state, a resolve once it is OK.

Item by item, as the Alertmanager webhook: Checkmk does not retry a notification the
plugin gave up on permanently, so one bad context must not lose a bulk's others.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.sources.batches import ItemError
from connectors.sources.body import check_json_values
from connectors.sources.tags import merge_labels
from schemas.alerts import Alert, Severity
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError, TocsinError
from schemas.types import MAX_TEXT

MODEL = "CheckmkNotifications"
MAX_NOTIFICATIONS = 1000
"""Contexts per request: Checkmk's bulks are bounded by their rule's maximum count
(1,000 by default)."""
MAX_VARIABLES = 512
MAX_VALUE = 65536

HOST_STATES: dict[str, Severity | None] = {"UP": None, "DOWN": "critical",
                                           "UNREACHABLE": "error"}  # fmt: skip
SERVICE_STATES: dict[str, Severity | None] = {
    "OK": None, "WARN": "warning", "WARNING": "warning", "CRIT": "critical",
    "CRITICAL": "critical", "UNKN": "error", "UNKNOWN": "error",
}  # fmt: skip
TYPES = ("PROBLEM", "RECOVERY", "ACKNOWLEDGEMENT", "FLAPPINGSTART", "FLAPPINGSTOP",
         "FLAPPINGDISABLED", "DOWNTIMESTART", "DOWNTIMEEND", "DOWNTIMECANCELLED",
         "CUSTOM")  # fmt: skip
HOST_ALERTNAME = "host_state"
_WEB = re.compile(r"^https?://", re.IGNORECASE)
_LABEL_PREFIXES = ("SERVICELABEL_", "HOSTLABEL_")


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = "1"
    notifications: list[Any] = Field(max_length=MAX_NOTIFICATIONS)


class _Context(BaseModel):
    """One notification's context: names and values as strings, bounded."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, str] = Field(max_length=MAX_VARIABLES)


def decode_checkmk_items(data: bytes, now: datetime
                         ) -> tuple[list[tuple[int, Alert]], list[ItemError]]:  # fmt: skip
    """(position, alert) for the contexts that map, an ItemError ``notifications.N.FIELD:
    ...`` for the rest; DecodeError for a body that is unusable as a whole."""
    check_json_values(data, MODEL)
    try:
        req = _Request.model_validate_json(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors(include_url=False)}
        reason = ("invalid_json" if "json_invalid" in kinds
                  else "too_many_items" if "too_long" in kinds else "validation")  # fmt: skip
        raise DecodeError(describe_validation_error(MODEL, exc), reason=reason,
                          model=MODEL) from exc  # fmt: skip
    if req.version != "1":
        raise DecodeError(f"{MODEL}.version: expected '1', got {req.version!r:.40}",
                          reason="unsupported_version", model=MODEL)  # fmt: skip
    good: list[tuple[int, Alert]] = []
    bad: list[ItemError] = []
    for i, item in enumerate(req.notifications):
        where = f"notifications.{i}"
        try:
            ctx = _Context.model_validate({"variables": item}).variables
            good.append((i, _alert(ctx, now)))
        except ValidationError as exc:
            bad.append(ItemError(i, describe_validation_error(where, exc).replace(
                f"{where}.variables", where)))  # fmt: skip
        except _Unmapped as exc:
            bad.append(ItemError(i, f"{where}.{exc}"))
        req.notifications[i] = None
    return good, bad


class _Unmapped(TocsinError, ValueError):
    """A context that is valid JSON but not a notification tocsin can map."""


def _need(ctx: dict[str, str], name: str, why: str = "required") -> str:
    value = ctx.get(name, "").strip()
    if not value:
        raise _Unmapped(f"{name}: {why}")
    return value


def _state(ctx: dict[str, str], what: str) -> tuple[str, Severity | None]:
    states = HOST_STATES if what == "HOST" else SERVICE_STATES
    names = ("HOSTSTATE",) if what == "HOST" else ("SERVICESTATE", "SERVICESHORTSTATE")
    for name in names:
        state = ctx.get(name, "").strip().upper()
        if state:
            if state not in states:
                raise _Unmapped(f"{name}: {state[:40]!r} is not a Checkmk {what.lower()} "
                                f"state ({', '.join(states)})")  # fmt: skip
            return state, states[state]
    raise _Unmapped(f"{names[0]}: required for a {what} notification")


def _last_severity(ctx: dict[str, str], what: str) -> Severity:
    """A resolve's severity: the problem state it recovered from, when Checkmk says."""
    states = HOST_STATES if what == "HOST" else SERVICE_STATES
    for name in ("LASTHOSTSTATE",) if what == "HOST" else ("LASTSERVICESTATE",):
        found = states.get(ctx.get(name, "").strip().upper())
        if found is not None:
            return found
    return "info"


def _time(ctx: dict[str, str], now: datetime) -> datetime:
    """MICROTIME (microseconds since the epoch), else now; never ahead of now."""
    raw = ctx.get("MICROTIME", "").strip()
    if raw.isdigit() and len(raw) <= 16:  # up to the year 2286
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(raw))
        return min(at, now)
    return now


def fingerprint(site: str, host: str, service: str) -> str:
    digest = hashlib.sha256(f"{site}\x00{host}\x00{service}".encode()).hexdigest()
    return f"checkmk:{digest[:32]}"


def _alert(ctx: dict[str, str], now: datetime) -> Alert:
    what = _need(ctx, "WHAT").upper()
    if what not in ("HOST", "SERVICE"):
        raise _Unmapped(f"WHAT: expected HOST or SERVICE, got {what[:40]!r}")
    ntype = _need(ctx, "NOTIFICATIONTYPE").upper()
    if ntype not in TYPES:
        raise _Unmapped(f"NOTIFICATIONTYPE: {ntype[:40]!r} is not mapped ({', '.join(TYPES)})")
    host = _need(ctx, "HOSTNAME")
    service = _need(ctx, "SERVICEDESC", "required for a SERVICE notification") \
        if what == "SERVICE" else ""  # fmt: skip
    state, severity = _state(ctx, what)
    site = ctx.get("OMD_SITE", "").strip()
    resolved = ntype == "RECOVERY" or severity is None
    at = _time(ctx, now)
    output = ctx.get("SERVICEOUTPUT" if service else "HOSTOUTPUT", "")
    labels = merge_labels(
        {"alertname": service or HOST_ALERTNAME, "host": host, "checkmk_site": site,
         "checkmk_service": service},
        ((k.split("_", 1)[1], v) for k, v in ctx.items() if k.startswith(_LABEL_PREFIXES)),
    )  # fmt: skip
    notes = {
        "checkmk_notification": ntype, "checkmk_state": state, "output": output,
        "long_output": ctx.get("LONGSERVICEOUTPUT" if service else "LONGHOSTOUTPUT", ""),
        "host_address": ctx.get("HOSTADDRESS", ""), "host_alias": ctx.get("HOSTALIAS", ""),
        "problem_id": ctx.get("SERVICEPROBLEMID" if service else "HOSTPROBLEMID", ""),
        "author": ctx.get("NOTIFICATIONAUTHOR", ""),
        "comment": ctx.get("NOTIFICATIONCOMMENT", ""),
    }  # fmt: skip
    notes = {k: v for k, v in notes.items() if v and v.strip() and v.strip() != "0"}
    notes_url = ctx.get("SERVICENOTESURL" if service else "HOSTNOTESURL", "")
    subject = f"{host}: {service} is {state}" if service else f"{host} is {state}"
    fields: dict[str, Any] = {
        "fingerprint": fingerprint(site, host, service),
        "status": "resolved" if resolved else "firing",
        "rule": (service or HOST_ALERTNAME)[:256],
        "source": "checkmk",
        "severity": _last_severity(ctx, what) if severity is None else severity,
        "labels": labels,
        "annotations": {k: v[:MAX_TEXT] for k, v in notes.items()},
        "summary": (f"{subject} - {output}" if output else subject)[:MAX_TEXT],
        "runbook_url": notes_url[:1024] if _WEB.match(notes_url) else None,
        "starts_at": at,
        "ends_at": at if resolved else None,
    }
    try:
        return Alert.model_validate(fields)
    except ValidationError as exc:
        raise _Unmapped(describe_validation_error("Alert", exc)) from exc


def example_payload() -> bytes:
    """A bulk of a service problem and a host recovery (docs and tests)."""
    return orjson.dumps({"version": "1", "notifications": [
        {"WHAT": "SERVICE", "NOTIFICATIONTYPE": "PROBLEM", "HOSTNAME": "db-1",
         "OMD_SITE": "prod", "SERVICEDESC": "Filesystem /var", "SERVICESTATE": "CRITICAL",
         "SERVICESHORTSTATE": "CRIT", "SERVICEOUTPUT": "97% used",
         "HOSTLABEL_team": "storage", "MICROTIME": "1767225600000000"},
        {"WHAT": "HOST", "NOTIFICATIONTYPE": "RECOVERY", "HOSTNAME": "web-2",
         "OMD_SITE": "prod", "HOSTSTATE": "UP", "LASTHOSTSTATE": "DOWN",
         "HOSTOUTPUT": "PING OK", "MICROTIME": "1767225660000000"},
    ]})  # fmt: skip
