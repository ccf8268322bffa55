"""ilert events API: ALERT / ACCEPT / RESOLVE keyed by ``alertKey`` (the incident id).

``Notification.target`` names an ilert alert-source integration key by alias, like
the PagerDuty sink (a tenant's as ``<tenant>/alias``); keys come from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from connectors.sinks.delivery import Delivery, for_tenant, of_tenant
from connectors.sinks.http import post
from schemas.notifications import Notification

EVENTS_URL = "https://api.ilert.com/api/events"


def ilert_event(n: Notification, api_key: str) -> dict[str, Any]:
    if n.status == "resolved" or n.kind == "resolve":
        kind = "RESOLVE"
    elif n.status == "acknowledged":
        kind = "ACCEPT"
    else:
        kind = "ALERT"
    event: dict[str, Any] = {"apiKey": api_key, "eventType": kind, "alertKey": n.incident_id,
                             "summary": f"[{n.priority}] {n.title}"[:255]}  # fmt: skip
    if kind == "ALERT":
        event["details"] = n.summary[:4000]
        if n.storm is not None:  # the incident summarises an alert storm
            event["details"] = f"{n.summary[:3000]}\n{n.storm.line()}".strip()
        event["priority"] = "HIGH" if n.severity in ("critical", "error") else "LOW"
        event["customDetails"] = {"labels": n.labels, "service": n.service, "team": n.team,
                                  "value": n.value, "threshold": n.threshold}  # fmt: skip
        if n.runbook_url:
            event["links"] = [{"href": n.runbook_url, "text": "Runbook"}]
    return event


class IlertSink:
    def __init__(self, client: httpx.AsyncClient, api_keys: Mapping[str, str],
                 url: str = EVENTS_URL) -> None:  # fmt: skip
        self.client = client
        self.keys = api_keys
        self.url = url

    async def deliver(self, n: Notification) -> Delivery:
        key = for_tenant(self.keys, n)
        if key is None:
            return Delivery(ok=False, error=f"no ilert API key for target {n.target!r}"
                                            f"{of_tenant(n)}")  # fmt: skip
        body = orjson.dumps(ilert_event(n, key))
        return await post(self.client, self.url, body, {"Content-Type": "application/json"},
                          ref=n.incident_id)  # fmt: skip
