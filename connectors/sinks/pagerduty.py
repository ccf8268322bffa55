"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident.

``dedup_key`` is the incident id, so every notification of one incident lands on
one PagerDuty alert (and a re-delivered trigger is deduplicated by PagerDuty too).
``Notification.target`` names a routing key by alias (``pagerduty`` target
``payments`` -> key ``routing_keys["payments"]``; a tenant's notification ->
``routing_keys["<tenant>/payments"]``), so keys stay out of config and out of the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from connectors.sinks.delivery import Delivery, for_tenant, of_tenant
from connectors.sinks.http import post
from schemas.notifications import Notification

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


def event_action(n: Notification) -> str:
    if n.status == "resolved" or n.kind == "resolve":
        return "resolve"
    if n.status == "acknowledged":
        return "acknowledge"
    return "trigger"


def pagerduty_event(n: Notification, routing_key: str, link: str | None = None) -> dict[str, Any]:
    action = event_action(n)
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                             "dedup_key": n.incident_id}  # fmt: skip
    if action == "trigger":
        details: dict[str, Any] = {"priority": n.priority, "labels": n.labels,
                                   "escalation_level": n.escalation_level,
                                   "assignee": n.assignee, "summary": n.summary}  # fmt: skip
        if n.value is not None:
            details["value"] = n.value
        if n.threshold is not None:
            details["threshold"] = n.threshold
        if n.anomaly_score is not None:
            details["anomaly_score"] = n.anomaly_score
        if n.anomaly is not None:
            a = n.anomaly
            details.update({"expected": a.expected, "usual_low": a.lower, "usual_high": a.upper,
                            "rarity": a.rarity, "last_hours": a.sparkline()})  # fmt: skip
            if a.series:
                details["series"] = a.series
        if n.storm is not None:  # the incident summarises an alert storm
            details["storm"] = n.storm.line()
            details["storm_labels"] = {k: t.values for k, t in n.storm.by_label.items()}
        event["payload"] = {
            "summary": f"[{n.priority}] {n.title}"[:1024],
            "source": (n.labels.get("instance") or n.labels.get("host") or n.service
                       or "tocsin")[:255],
            "severity": _SEVERITY[n.severity],
            "timestamp": n.opened_at.isoformat(),
            "component": n.service, "group": n.team, "class": n.labels.get("alertname"),
            "custom_details": details,
        }  # fmt: skip
        links = [{"href": u, "text": t} for u, t in ((n.runbook_url, "Runbook"),
                                                    (link, "Incident")) if u]  # fmt: skip
        if links:
            event["links"] = links
    return event


class PagerDutySink:
    def __init__(self, client: httpx.AsyncClient, routing_keys: Mapping[str, str],
                 url: str = EVENTS_URL, incident_url: str | None = None) -> None:  # fmt: skip
        self.client = client
        self.keys = routing_keys
        self.url = url
        self.incident_url = incident_url  # e.g. "https://tocsin.example/incidents/{id}"

    async def deliver(self, n: Notification) -> Delivery:
        key = for_tenant(self.keys, n)
        if key is None:
            why = f"no PagerDuty routing key for target {n.target!r}{of_tenant(n)}"
            return Delivery(ok=False, error=why)
        link = self.incident_url.format(id=n.incident_id) if self.incident_url else None
        body = orjson.dumps(pagerduty_event(n, key, link))
        return await post(self.client, self.url, body,
                          {"Content-Type": "application/json"}, ref=n.incident_id)  # fmt: skip
