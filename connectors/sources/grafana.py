"""Grafana-managed alerting's webhook contact point (payload ``version: "1"``) mapped to
Alert transitions.

The payload is Alertmanager's webhook with Grafana's additions: per alert the links
(``dashboardURL``, ``panelURL``, ``silenceURL``, ``generatorURL``, ``imageURL``) and the
query ``values``; per notification ``orgId``, ``state``, ``title`` and ``message``.
Grafana's own states arrive as alerts too: no data as ``alertname: DatasourceNoData``,
a failing query as ``alertname: DatasourceError`` with the error in the ``Error``
annotation. Each alert keeps Grafana's fingerprint (or, when absent, Alertmanager's hash
of its labels), its links as annotations (``dashboard_url``, ``panel_url``,
``silence_url``, ``generator_url``, ``image_url``) and its values (``values``); the
runbook, else the panel, else the dashboard becomes the alert's ``runbook_url``, the
link a page shows.

Item by item like the Alertmanager webhook: the valid alerts are kept and an ItemError
names each invalid one; what makes the notification unusable raises DecodeError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.sources.alertmanager import fingerprint, severity_of
from connectors.sources.batches import ItemError
from connectors.sources.body import MAX_ITEMS, check_json_values, too_many
from schemas.alerts import Alert, Severity
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError

_MODEL = "GrafanaWebhook"
_ZERO_YEAR = 1
_LINKS = (("dashboardURL", "dashboard_url"), ("panelURL", "panel_url"),
          ("silenceURL", "silence_url"), ("generatorURL", "generator_url"),
          ("imageURL", "image_url"))  # fmt: skip
_STATE_SEVERITY: dict[str, Severity] = {"DatasourceError": "error",
                                        "DatasourceNoData": "warning"}  # fmt: skip
MAX_VALUES_TEXT = 1024


class _GrafanaAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    fingerprint: str | None = None
    generatorURL: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    silenceURL: str | None = None
    imageURL: str | None = None
    values: dict[str, Any] | None = None
    valueString: str | None = None


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str
    orgId: int | None = None
    state: str | None = None
    title: str | None = None
    message: str | None = None
    alerts: list[Any]


def decode_grafana_items(data: bytes, now: datetime
                         ) -> tuple[list[tuple[int, Alert]], list[ItemError]]:  # fmt: skip
    check_json_values(data, _MODEL)
    try:
        hook = _Webhook.model_validate_json(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors(include_url=False)}
        raise DecodeError(describe_validation_error(_MODEL, exc),
                          reason="invalid_json" if "json_invalid" in kinds else "validation",
                          model=_MODEL) from exc  # fmt: skip
    if hook.version != "1":
        raise DecodeError(f"{_MODEL}.version: expected \"1\" (Grafana-managed alerting), got "
                          f"{hook.version!r:.40}; Alertmanager's webhook goes to /v1/alertmanager",
                          reason="unsupported_version", model=_MODEL)  # fmt: skip
    if len(hook.alerts) > MAX_ITEMS:
        raise too_many("alerts", _MODEL)
    good: list[tuple[int, Alert]] = []
    bad: list[ItemError] = []
    for i, item in enumerate(hook.alerts):
        try:
            good.append((i, _alert(_GrafanaAlert.model_validate(item), hook, now)))
        except ValidationError as exc:
            bad.append(ItemError(i, f"alerts.{i}: {describe_validation_error('Alert', exc)}"))
        except (ValueError, OverflowError) as exc:
            bad.append(ItemError(i, f"alerts.{i}: {exc}"))
        hook.alerts[i] = None
    return good, bad


def _alert(g: _GrafanaAlert, hook: _Webhook, now: datetime) -> Alert:
    resolved = g.status == "resolved"
    ends = g.endsAt if g.endsAt is not None and g.endsAt.year > _ZERO_YEAR else None
    if resolved and ends is None:
        ends = max(now, g.startsAt)
    if not resolved:
        ends = None  # Grafana tells the resolution itself, with a resolved notification
    name = g.labels.get("alertname") or g.labels.get("rulename") or "grafana"
    notes = dict(sorted(g.annotations.items())[:24])
    for field, key in _LINKS:
        link = getattr(g, field)
        if link:
            notes[key] = link[:8000]
    if g.values:
        notes["values"] = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in g.values.items())[:MAX_VALUES_TEXT]  # fmt: skip
    if hook.orgId is not None:
        notes["grafana_org_id"] = str(hook.orgId)
    summary = (g.annotations.get("summary") or g.annotations.get("description")
               or g.annotations.get("Error") or hook.title or name)  # fmt: skip
    runbook = (g.annotations.get("runbook_url") or g.panelURL or g.dashboardURL
               or g.generatorURL or None)  # fmt: skip
    severity = (severity_of(g.labels) if "severity" in g.labels
                else _STATE_SEVERITY.get(name, "warning"))  # fmt: skip
    fields: dict[str, Any] = {
        "fingerprint": g.fingerprint or fingerprint(g.labels),
        "status": "resolved" if resolved else "firing",
        "rule": name,
        "source": "grafana",
        "severity": severity,
        "labels": g.labels,
        "annotations": notes,
        "summary": summary[:8000],
        "runbook_url": runbook[:1024] if runbook else None,
        "starts_at": g.startsAt,
        "ends_at": ends,
    }
    return Alert.model_validate(fields)


def example_payload(status: str = "firing") -> bytes:
    """A Grafana webhook notification as Grafana's documentation shows it (docs, tests)."""
    return orjson.dumps({
        "receiver": "tocsin", "status": status, "orgId": 1, "version": "1",
        "groupKey": "{}/{}:{}", "truncatedAlerts": 0, "externalURL": "https://grafana.example/",
        "state": "alerting" if status == "firing" else "ok",
        "title": f"[{status.upper()}:1]  (blue)", "message": "**Firing**",
        "groupLabels": {}, "commonLabels": {"team": "blue"}, "commonAnnotations": {},
        "alerts": [{
            "status": status,
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {"description": "The system has high memory usage",
                            "runbook_url": "https://runbooks.example/1234",
                            "summary": "This alert was triggered for zone us-1"},
            "startsAt": "2026-01-01T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T10:01:03Z",
            "generatorURL": "https://grafana.example/alerting/grafana/1afz29v7z/view",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://grafana.example/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "https://grafana.example/d/abc123",
            "panelURL": "https://grafana.example/d/abc123?viewPanel=1",
            "values": {"B": 44.23943737541908, "C": 1},
            "valueString": "[ var='B' value=44.23943737541908 ], [ var='C' value=1 ]",
        }],
    })  # fmt: skip
