"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. Its schemas are
the pydantic models the API validates with (JSON Schema 2020-12, which OpenAPI 3.1
uses as is), so the document cannot drift from what the API accepts.

Every operation takes ``tenant`` (query) and has a twin under
``/api/v1/tenants/{tenant}``: the provider role's way to act in a tenant."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas import api as m
from streams.status import openapi as status_api

REF = "#/components/schemas/{model}"
ERRORS = {
    "400": "Invalid input; `field` names the field", "401": "Missing or unknown API token",
    "403": "The token's role may not do this",
    "404": "Unknown id (another tenant's id is unknown too), or a tenant this token may not name",
    "409": "Conflicts with the incident's or silence's state",
    "429": "Kafka cannot take the command now (Retry-After)",
    "503": "The store or Kafka is unreachable (Retry-After)",
}  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _op(summary: str, ok: tuple[str, type[BaseModel] | None, str], *, role: str = "viewer",
        body: type[BaseModel] | None = None, params: list[dict[str, Any]] | None = None,
        errors: tuple[str, ...] = ("400", "401", "503")) -> dict[str, Any]:  # fmt: skip
    code, model, text = ok
    resp: dict[str, Any] = {"description": text}
    if model is not None:
        resp |= _json(model)
    op: dict[str, Any] = {
        "summary": summary, "description": f"Role: {role} or above.",
        "responses": {code: resp, **{c: {"description": ERRORS[c], **_json(m.Problem)}
                                     for c in errors}},
    }  # fmt: skip
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _q(name: str, schema: dict[str, Any], text: str, many: bool = False) -> dict[str, Any]:
    if many:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": schema, "style": "form", "explode": True}  # fmt: skip


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
LIST_PARAMS = [
    _q("status", {"enum": ["triggered", "acknowledged", "resolved"]}, "any of", True),
    _q("priority", {"enum": ["P1", "P2", "P3", "P4", "P5"]}, "any of", True),
    _q("service", _STR, "any of", True), _q("team", _STR, "any of", True),
    _q("since", _TIME, "opened at or after"), _q("until", _TIME, "opened before"),
    _q("q", _STR, "words that must all occur in the title or labels"),
    _q("sort", {"enum": ["opened_at", "-opened_at", "updated_at", "-updated_at", "priority",
                         "-priority"], "default": "-opened_at"}, "- for descending"),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": m.MAX_PAGE, "default": 50},
       "page size"),
    _q("cursor", _STR, "next_cursor of the previous page"),
]  # fmt: skip
ACCEPTED = ("202", m.Accepted, "Written to Kafka; the agents apply it shortly")


def _action(summary: str, body: type[BaseModel]) -> dict[str, Any]:
    op = _op(summary, ACCEPTED, role="responder", body=body,
             errors=("400", "401", "403", "404", "409", "429", "503"))  # fmt: skip
    op["parameters"] = [_path("incident_id")]
    return op


def paths() -> dict[str, Any]:
    inc = "/api/v1/incidents/{incident_id}"
    return {
        "/api/v1/incidents": {"get": _op("List incidents", ("200", m.IncidentPage, "A page"),
                                         params=LIST_PARAMS)},
        "/api/v1/incidents/live": {"get": {
            "summary": "Incident changes as server-sent events (`event: incident`, data an "
                       "IncidentSummary; id = its updated_at for Last-Event-ID)",
            "description": "Role: viewer or above.",
            "responses": {"200": {"description": "text/event-stream", "content": {
                "text/event-stream": {"schema": {"type": "string"}}}},
                "401": {"description": ERRORS["401"], **_json(m.Problem)}}}},
        inc: {"get": {**_op("One incident with members, notifications and timeline",
                            ("200", m.IncidentDetail, "The incident"),
                            errors=("401", "404", "503")),
                      "parameters": [_path("incident_id")]}},
        inc + "/postmortem": {"get": {
            "summary": "Postmortem draft (Markdown) of a resolved incident",
            "description": "Role: viewer or above.", "parameters": [_path("incident_id")],
            "responses": {"200": {"description": "Markdown", "content": {
                "text/markdown": {"schema": {"type": "string"}}}},
                **{c: {"description": ERRORS[c], **_json(m.Problem)}
                   for c in ("401", "404", "409", "503")}}}},
        inc + "/ack": {"post": _action("Acknowledge", m.EmptyBody)},
        inc + "/resolve": {"post": _action("Resolve", m.EmptyBody)},
        inc + "/escalate": {"post": _action("Escalate to the next level now", m.EmptyBody)},
        inc + "/reassign": {"post": _action("Assign to a user", m.ReassignBody)},
        inc + "/note": {"post": _action("Add a note (also on a resolved incident)", m.NoteBody)},
        inc + "/snooze": {"post": _action("Snooze (acknowledged until then)", m.SnoozeBody)},
        inc + "/priority": {"post": _action("Change the priority", m.PriorityBody)},
        "/api/v1/silences": {
            "get": _op("List silences", ("200", m.SilenceList, "Silences, newest first"),
                       params=[_q("state", {"enum": ["active", "pending", "expired"]},
                                  "only those in this state")]),
            "post": _op("Create a silence or a (weekly) maintenance window", ACCEPTED,
                        role="responder", body=m.SilenceBody,
                        errors=("400", "401", "403", "429", "503")),
        },
        "/api/v1/silences/{silence_id}": {
            "get": {**_op("One silence", ("200", m.Silence, "The silence"),
                          errors=("401", "404", "503")), "parameters": [_path("silence_id")]},
            "delete": {**_op("Expire a silence now", ACCEPTED, role="responder",
                             errors=("401", "403", "404", "409", "429", "503")),
                       "parameters": [_path("silence_id")]},
        },
        "/api/v1/oncall": {"get": _op("Who is on call now and next, per schedule (times in "
                                      "the schedule's zone)", ("200", m.OnCallList, "Schedules"),
                                      errors=("401", "503"))},
        "/api/v1/oncall/overrides": {"post": _op("Override a schedule for a while", ACCEPTED,
                                                 role="responder", body=m.OverrideBody,
                                                 errors=("400", "401", "403", "429", "503"))},
        "/api/v1/reports": {"get": _csv(_op(
            "Counts, MTTA, MTTR (mean, p50/p90/p99), ack-SLA breaches, top alerts, noisiest "
            "rules", ("200", m.Report, "The report"),
            params=[_q("since", _STR, "a duration back from until (30d, 12h) or an instant"),
                    _q("until", _TIME, "default now"),
                    _q("group_by", {"enum": ["service", "team", "priority"]}, "rows per"),
                    FORMAT]))},
        "/api/v1/reports/sla": {"get": _csv(_op(
            "Per tenant and month (UTC, by opening): incidents, MTTA, MTTR, acknowledgement-"
            "SLA breaches against the tenant's ack_sla", ("200", m.SlaReport, "The months"),
            errors=("400", "401", "403", "503"),
            params=[_q("from", {"type": "string", "pattern": "^\\d{4}-\\d{2}$"},
                       "first month, YYYY-MM (default: two months before to)"),
                    _q("to", {"type": "string", "pattern": "^\\d{4}-\\d{2}$"},
                       "last month, YYYY-MM (default: this month)"),
                    _q("tenants", {"enum": ["all"]}, "every tenant (provider role only)"),
                    FORMAT]))},
        "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                         "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        **status_api.paths(_op, _path, ACCEPTED),
    }  # fmt: skip


MODELS: list[type[BaseModel]] = [
    m.IncidentPage, m.IncidentDetail, m.Accepted, m.Problem, m.EmptyBody, m.NoteBody,
    m.ReassignBody, m.SnoozeBody, m.PriorityBody, m.SilenceBody, m.Silence, m.SilenceList,
    m.OverrideBody, m.OnCallList, m.Report, m.SlaReport, *status_api.MODELS,
]  # fmt: skip
FORMAT = _q("format", {"enum": ["json", "csv"]}, "csv: the rows as text/csv (so does "
            "Accept: text/csv)")  # fmt: skip
TENANT = _q(
    "tenant",
    {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
    "the tenant to act in: the provider role only (other tokens act in their own)",
)
TENANT_PREFIX = "/api/v1/tenants/{tenant}"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "description": "a name the client gives this write: a retry under the same name (after "
    "a 503, a lost answer) is the same command, applied once",
}  # fmt: skip


def _csv(op: dict[str, Any]) -> dict[str, Any]:
    op["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return op


def tenanted(items: dict[str, Any]) -> dict[str, Any]:
    """Every operation with ``?tenant=``, and its twin under /api/v1/tenants/{tenant};
    every write with its Idempotency-Key."""
    out: dict[str, Any] = {}
    for path, ops in items.items():
        if path == "/api/v1/openapi.json":
            out[path] = ops
            continue
        ops = {verb: op if verb == "get" else
               {**op, "parameters": [*op.get("parameters", []), IDEMPOTENCY_KEY]}
               for verb, op in ops.items()}  # fmt: skip
        out[path] = {verb: {**op, "parameters": [*op.get("parameters", []), TENANT]}
                     for verb, op in ops.items()}  # fmt: skip
        twin = TENANT_PREFIX + path.removeprefix("/api/v1")
        out[twin] = {verb: {**op, "summary": f"{op['summary']} (in a tenant)",
                            "description": "Role: provider.",
                            "parameters": [_path("tenant"), *op.get("parameters", [])]}
                     for verb, op in ops.items()}  # fmt: skip
    return out


@cache
def document() -> dict[str, Any]:
    modes = [(model, "validation" if "Body" in model.__name__ else "serialization")
             for model in MODELS]  # fmt: skip
    _, defs = models_json_schema(modes, ref_template=REF)  # type: ignore[arg-type]
    return {
        "openapi": "3.1.0",
        "info": {"title": "tocsin incident API", "version": "1",
                 "description": "Incidents, actions, silences, on-call and reports. Reads "
                 "come from the store; actions are Commands the agents apply."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": tenanted(paths()),
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }  # fmt: skip


async def serve(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(document()), content_type="application/json")
