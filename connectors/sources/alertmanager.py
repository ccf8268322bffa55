"""Alertmanager's webhook (payload version 4) mapped to Alert transitions.

Tolerant by design: unknown fields are ignored and optional ones may be missing
(Alertmanager versions differ, and proxies add their own). Each alert keeps
Alertmanager's own fingerprint; when an old sender omits it, the same FNV-1a 64
hash of the sorted label set that Alertmanager computes is used, so transitions
from either path land on the same key.

Item by item: `decode_alertmanager_items` returns the valid alerts and an error per
invalid one (Alertmanager does not retry a 4xx, so the valid alerts of a notification
must not be lost to one bad label). What makes the webhook as a whole unusable (not
JSON, wrong version, too many alerts) raises DecodeError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.sources.batches import ItemError
from connectors.sources.body import MAX_ITEMS, check_json_values, too_many
from schemas.alerts import Alert, Severity
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError

_ZERO_YEAR = 1  # Alertmanager sends endsAt "0001-01-01T00:00:00Z" for firing alerts
_SEVERITY: dict[str, Severity] = {
    "critical": "critical", "page": "critical", "emergency": "critical", "fatal": "critical",
    "error": "error", "high": "error", "major": "error",
    "warning": "warning", "warn": "warning", "medium": "warning", "minor": "warning",
    "info": "info", "low": "info", "none": "info", "informational": "info",
}  # fmt: skip


class _AMAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    status: str | None = None
    receiver: str | None = None
    alerts: list[Any]  # validated one by one: see decode_alertmanager_items


def severity_of(labels: dict[str, str]) -> Severity:
    """tocsin's severity for an alert's ``severity`` label (warning when absent or unknown)."""
    return _SEVERITY.get(labels.get("severity", "").lower(), "warning")


def fingerprint(labels: dict[str, str]) -> str:
    """Prometheus model.LabelSet.Fingerprint: FNV-1a 64 over sorted name\\xffvalue\\xff."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def decode_alertmanager(data: bytes, now: datetime) -> list[Alert]:
    """Every alert, or DecodeError naming the first invalid one."""
    alerts, errors = decode_alertmanager_items(data, now)
    if errors:
        raise DecodeError(errors[0].message, reason="validation", model="AlertmanagerWebhook")
    return [a for _, a in alerts]


def decode_alertmanager_items(data: bytes, now: datetime
                              ) -> tuple[list[tuple[int, Alert]], list[ItemError]]:  # fmt: skip
    """(position, alert) for the valid alerts, an ItemError ``alerts.N: ...`` for the rest."""
    check_json_values(data, "AlertmanagerWebhook")
    try:
        hook = _Webhook.model_validate_json(data)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error("AlertmanagerWebhook", exc),
                          reason=_reason(exc), model="AlertmanagerWebhook") from exc  # fmt: skip
    if not hook.version.startswith("4"):
        grafana = " (Grafana's webhook: post it to /v1/grafana)" if hook.version == "1" else ""
        raise DecodeError(f"AlertmanagerWebhook.version: expected 4, got {hook.version!r:.40}"
                          f"{grafana}",
                          reason="unsupported_version", model="AlertmanagerWebhook")  # fmt: skip
    if len(hook.alerts) > MAX_ITEMS:
        raise too_many("alerts", "AlertmanagerWebhook")
    good: list[tuple[int, Alert]] = []
    bad: list[ItemError] = []
    for i, item in enumerate(hook.alerts):
        try:
            good.append((i, _alert(_AMAlert.model_validate(item), now)))
        except ValidationError as exc:
            bad.append(ItemError(i, f"alerts.{i}: {describe_validation_error('Alert', exc)}"))
        except (ValueError, OverflowError) as exc:  # a date pydantic parsed, beyond datetime
            bad.append(ItemError(i, f"alerts.{i}: {exc}"))
        hook.alerts[i] = None  # its Python objects go as soon as it is decoded
    return good, bad


def _alert(am: _AMAlert, now: datetime) -> Alert:
    resolved = am.status == "resolved"
    ends = am.endsAt if am.endsAt is not None and am.endsAt.year > _ZERO_YEAR else None
    if resolved and ends is None:
        ends = max(now, am.startsAt)
    if not resolved:
        ends = None  # a firing alert's endsAt is Alertmanager's resolve timeout, not an end
    notes = dict(sorted(am.annotations.items())[:31])
    if am.generatorURL:
        notes["generator_url"] = am.generatorURL[:8000]
    fields: dict[str, Any] = {
        "fingerprint": am.fingerprint or fingerprint(am.labels),
        "status": "resolved" if resolved else "firing",
        "rule": am.labels.get("alertname") or "alertmanager",
        "source": "alertmanager",
        "severity": severity_of(am.labels),
        "labels": am.labels,
        "annotations": notes,
        "summary": (am.annotations.get("summary") or am.annotations.get("description") or "")[
            :8000
        ],
        "runbook_url": am.annotations.get("runbook_url") or am.annotations.get("runbook"),
        "starts_at": am.startsAt,
        "ends_at": ends,
    }
    return Alert.model_validate(fields)


def _reason(exc: ValidationError) -> str:
    kinds = {e["type"] for e in exc.errors(include_url=False)}
    return "invalid_json" if "json_invalid" in kinds else "validation"


def example_payload() -> bytes:
    """A minimal valid webhook body (docs and tests)."""
    return orjson.dumps({
        "version": "4", "status": "firing", "receiver": "tocsin",
        "alerts": [{"status": "firing", "labels": {"alertname": "HighCPU", "severity": "page",
                                                   "instance": "web-03"},
                    "annotations": {"summary": "CPU above 90%"},
                    "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "c0ffee0000000001"}],
    })  # fmt: skip
