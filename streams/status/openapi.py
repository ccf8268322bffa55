"""The status pages' part of the OpenAPI document (streams/api/openapi.py merges it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schemas import status as s

_ERRORS = ("400", "401", "403", "404", "429", "503")


def paths(op: Any, path: Any, accepted: Any) -> dict[str, Any]:
    """`op`, `path` and `accepted` are openapi.py's builders, so both parts read alike."""

    def with_path(o: dict[str, Any], *names: str) -> dict[str, Any]:
        return {**o, "parameters": [path(n) for n in names]}

    return {
        "/api/v1/incidents/{incident_id}/updates": {"post": with_path(op(
            "Post a status-page update (investigating, identified, monitoring, resolved) "
            "for the audiences named", accepted, role="responder", body=s.UpdateBody,
            errors=(*_ERRORS, "409")), "incident_id")},
        "/api/v1/status/components/{component}/override": {
            "put": with_path(op("Set a component's state until cleared", accepted,
                                role="responder", body=s.StateOverrideBody, errors=_ERRORS),
                             "component"),
            "delete": with_path(op("Clear a component's state (back to automatic)", accepted,
                                   role="responder", errors=_ERRORS), "component"),
        },
        "/api/v1/status/maintenance": {"post": op(
            "Schedule maintenance (shown ahead of time)", accepted, role="responder",
            body=s.MaintenanceBody, errors=_ERRORS)},
        "/api/v1/status/maintenance/{maintenance_id}": {"delete": with_path(op(
            "Call off scheduled maintenance", accepted, role="responder",
            errors=("401", "403", "404", "429", "503")), "maintenance_id")},
        "/api/v1/status/pages/{page}/subscribers": {
            "get": with_path(op("A page's webhook subscribers", ("200", None, "Subscribers"),
                                errors=("401", "404", "503")), "page"),
            "post": with_path(op("Subscribe a webhook URL to a page (answers its HMAC key, "
                                 "once)", ("201", None, "The subscriber and its secret"),
                                 role="responder", body=s.SubscriberBody, errors=_ERRORS),
                              "page"),
        },
        "/api/v1/status/pages/{page}/subscribers/{subscriber_id}": {"delete": with_path(op(
            "Unsubscribe", ("204", None, "Removed"), role="responder",
            errors=("401", "403", "404", "503")), "page", "subscriber_id")},
    }  # fmt: skip


MODELS: list[type[BaseModel]] = [s.UpdateBody, s.StateOverrideBody, s.MaintenanceBody,
                                 s.SubscriberBody]  # fmt: skip
