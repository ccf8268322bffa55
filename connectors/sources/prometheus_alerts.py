"""Alerts as Prometheus posts them to Alertmanager (`POST /api/v2/alerts`), mapped to
Alert transitions with Alertmanager's own rules:

- an alert without ``startsAt`` starts at its ``endsAt``, or now when it has neither;
- an alert without ``endsAt`` expires ``resolve_timeout`` (5 minutes) after it arrived;
- an alert whose ``endsAt`` is not after the time it arrived is resolved; any other is
  firing, and carries its ``endsAt`` as ``ends_at``: the instant it resolves by itself
  unless it is sent again (Prometheus re-sends a firing alert every minute with a later
  ``endsAt``; the expiry worker resolves the ones that stopped coming);
- labels with an empty value are dropped; an alert with no label left is refused.

The fingerprint is Alertmanager's (FNV-1a 64 of the sorted label set), so an alert posted
here and the same alert relayed by an Alertmanager webhook land on the same key.

Item by item, as Alertmanager answers: the valid alerts are kept and an ItemError names
each invalid one (``alerts.N.field: ...``). What makes the body as a whole unusable (not
JSON, not an array, too many alerts) raises DecodeError.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from connectors.sources.alertmanager import fingerprint, severity_of
from connectors.sources.batches import ItemError
from connectors.sources.body import MAX_ITEMS, check_json_values, too_many
from schemas.alerts import Alert
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError

RESOLVE_TIMEOUT = timedelta(minutes=5)  # Alertmanager's default `resolve_timeout`
_ZERO_YEAR = 1  # Go's zero time.Time, as Go clients write an unset date
_MODEL = "PostableAlert"


class PostableAlert(BaseModel):
    """One item of Alertmanager's ``postableAlerts`` (OpenAPI v2)."""

    model_config = ConfigDict(extra="ignore")

    labels: dict[str, str]
    annotations: dict[str, str] | None = None
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = None


_BATCH = TypeAdapter(list[PostableAlert])


@lru_cache(maxsize=65536)
def _fingerprint(label_set: bytes) -> str:
    return fingerprint(orjson.loads(label_set))


def label_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint, remembered: Prometheus sends the same label sets again
    every minute, and the hash is computed byte by byte. Remembered by the label set as
    JSON with sorted keys (one string per set: cheaper to build and to look up than a
    tuple of pairs)."""
    return _fingerprint(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS))


def decode_postable_alerts(data: bytes, now: datetime,
                           resolve_timeout: timedelta = RESOLVE_TIMEOUT,
                           ) -> tuple[list[tuple[int, Alert]], list[ItemError]]:  # fmt: skip
    """(position, alert) for the valid alerts, an ItemError for each other one."""
    check_json_values(data, _MODEL)
    try:
        items: list[Any] = _BATCH.validate_json(data)  # the fast path: every item valid
    except ValidationError:
        items = _items(data)
    if len(items) > MAX_ITEMS:
        raise too_many("alerts", _MODEL)
    good: list[tuple[int, Alert]] = []
    bad: list[ItemError] = []
    produced = datetime.now(UTC)  # one reading of the clock for the request's alerts
    for i, item in enumerate(items):
        model = _MODEL
        try:
            posted = item if isinstance(item, PostableAlert) else PostableAlert.model_validate(item)
            model = "Alert"
            good.append((i, to_alert(posted, now, resolve_timeout, produced)))
        except ValidationError as exc:
            bad.append(ItemError(i, f"alerts.{i}: {describe_validation_error(model, exc)}"))
        except ValueError as exc:  # our own checks, and dates beyond datetime
            bad.append(ItemError(i, f"alerts.{i}.{exc}"))
        except OverflowError as exc:
            bad.append(ItemError(i, f"alerts.{i}: {exc}"))
        items[i] = None
    return good, bad


def _items(data: bytes) -> list[Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{_MODEL}s: body is not JSON: {exc}", reason="invalid_json",
                          model=_MODEL) from exc  # fmt: skip
    if not isinstance(doc, list):
        raise DecodeError(f"{_MODEL}s: expected a JSON array of alerts, got "
                          f"{type(doc).__name__}", reason="validation", model=_MODEL)  # fmt: skip
    return doc


def _set(at: datetime | None) -> datetime | None:
    return at if at is not None and at.year > _ZERO_YEAR else None


def to_alert(posted: PostableAlert, now: datetime, resolve_timeout: timedelta = RESOLVE_TIMEOUT,
             produced_at: datetime | None = None) -> Alert:  # fmt: skip
    labels = {k: v for k, v in posted.labels.items() if v}
    if not labels:
        raise ValueError("labels: at least one label pair with a value is required")
    starts, ends = _set(posted.startsAt), _set(posted.endsAt)
    for name, at in (("startsAt", starts), ("endsAt", ends)):
        if at is not None and at.tzinfo is None:
            raise ValueError(f"{name}: a date with a time zone is required (RFC 3339)")
    if starts is None:
        starts = ends if ends is not None else now
    if ends is None:
        ends = max(now + resolve_timeout, starts)
    if ends < starts:
        raise ValueError("endsAt: must not be before startsAt")
    given = posted.annotations or {}
    notes = dict(given) if len(given) < 32 else dict(sorted(given.items())[:31])
    if posted.generatorURL:
        notes["generator_url"] = posted.generatorURL[:8000]
    summary = notes.get("summary") or notes.get("description") or ""
    fields: dict[str, Any] = {
        "fingerprint": label_fingerprint(labels),
        "status": "firing" if ends > now else "resolved",
        "rule": labels.get("alertname") or "alertmanager",
        "source": "alertmanager",
        "severity": severity_of(labels),
        "labels": labels,
        "annotations": notes,
        "summary": summary[:8000],
        "runbook_url": notes.get("runbook_url") or notes.get("runbook"),
        "starts_at": starts,
        "ends_at": ends,
    }
    if produced_at is not None:
        fields["produced_at"] = produced_at
    return Alert.model_validate(fields)
