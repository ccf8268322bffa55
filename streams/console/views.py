"""The console's other pages: on call, silences (create and expire), reports with charts
and the postmortem draft; each reads through the store's queries and acts through the
API's command path."""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

import click
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import Connection

from processors.incidents.reports import postmortem
from schemas.api import Report, SilenceBody
from streams.api.app import CONSOLE, Api, ApiError, duration, problem
from streams.api.incidents import user_names
from streams.api.people import SILENCE_STATES, create_silence, expire_silence, oncall_now
from streams.cli.silences import parse_matcher
from streams.console import charts
from streams.console.web import SESSION, action, add, failed, render, session
from streams.store import queries

BUCKETS = 8
PERIODS = ("7d", "30d", "90d")


def add_routes(api: Api, app: web.Application) -> None:
    async def oncall(request: web.Request) -> web.Response:
        s = session(request)
        return render(request, "oncall.html", doc=await oncall_now(api, s.principal.tenant))

    async def silences(request: web.Request, error: str | None = None,
                       status: int = 200) -> web.Response:  # fmt: skip
        s = session(request) if error is None else request[SESSION]
        items = await api.db(queries.list_silences, s.principal.tenant, api.clock(), None)
        order = {st: i for i, st in enumerate(SILENCE_STATES)}
        items.sort(key=lambda x: order[x.state])
        return render(request, "silences.html", status=status, items=items, error=error,
                      sent=request.query.get("sent"))  # fmt: skip

    async def create(request: web.Request) -> web.StreamResponse:
        _, form = await action(request)
        try:
            matchers = [parse_matcher(m) for m in shlex.split(form.get("matchers", ""))]
        except (click.BadParameter, ValueError) as exc:
            msg = exc.format_message() if isinstance(exc, click.BadParameter) else str(exc)
            return await silences(request, f"matchers: {msg}", 400)
        span = duration(form.get("duration", "") or "1h")
        if span is None:
            return await silences(request, "duration: such as 30m, 2h or 1d", 400)
        try:
            body = SilenceBody.model_validate({"matchers": matchers, "duration": span,
                                               "comment": form.get("comment", "")})  # fmt: skip
            await create_silence(api, request, body)
        except ValidationError as exc:
            return await silences(request, problem(exc, "form").error, 400)
        except ApiError as exc:
            return await silences(request, exc.error, exc.status)
        raise web.HTTPSeeOther(f"{CONSOLE}/silences?sent=created")

    async def expire(request: web.Request) -> web.StreamResponse:
        await action(request)
        try:
            await expire_silence(api, request, request.match_info["silence_id"])
        except ApiError as exc:
            return await silences(request, exc.error, exc.status)
        raise web.HTTPSeeOther(f"{CONSOLE}/silences?sent=expired")

    async def reports(request: web.Request) -> web.Response:
        s = session(request)
        period = request.query.get("since", "30d")
        span = duration(period) if period in PERIODS else None
        if span is None:
            return failed(request, 400, f"since: one of {', '.join(PERIODS)}")
        until = api.clock()
        sla = dict(api.configs.get(s.principal.tenant, api.cfg).ack_sla)
        whole, buckets = await api.db(_reports, s.principal.tenant, until - span, until, sla)
        starts = [b.since for b in buckets]
        trend = charts.lines("MTTA and MTTR over time", starts, [
            charts.Series("MTTA", "mtta", [b.total.mtta_s for b in buckets]),
            charts.Series("MTTR", "mttr", [b.total.mttr_s for b in buckets]),
        ])  # fmt: skip
        per_service = charts.bars("Incidents per service",
                                  [(g.key, g.incidents) for g in whole.groups])  # fmt: skip
        return render(request, "reports.html", report=whole, trend=trend,
                      per_service=per_service, period=period, periods=PERIODS)  # fmt: skip

    async def draft(request: web.Request) -> web.Response:
        s = session(request)
        iid = request.match_info["incident_id"]
        inc = await api.db(queries.incident_detail, s.principal.tenant, iid)
        if inc is None:
            return failed(request, 404, f"no incident {iid!r}")
        if inc.status != "resolved":
            return failed(request, 409, f"incident {iid} is {inc.status}: a postmortem draft "
                          "is written once it is resolved")  # fmt: skip
        return render(request, "postmortem.html", inc=inc,
                      markdown=postmortem(inc, user_names(api, s.principal.tenant)))  # fmt: skip

    add(app, "GET", f"{CONSOLE}/oncall", oncall)
    add(app, "GET", f"{CONSOLE}/silences", silences)
    add(app, "POST", f"{CONSOLE}/silences", create)
    add(app, "POST", f"{CONSOLE}/silences/{{silence_id}}/expire", expire)
    add(app, "GET", f"{CONSOLE}/reports", reports)
    add(app, "GET", f"{CONSOLE}/incidents/{{incident_id}}/postmortem", draft)


def _reports(conn: Connection, tenant: str, since: datetime, until: datetime,
             sla: dict[str, timedelta]) -> tuple[Report, list[Report]]:  # fmt: skip
    """The whole period by service, and its totals in equal buckets (the trend), in one
    connection."""
    whole = queries.report(conn, tenant, since, until, "service", sla)
    step = (until - since) / BUCKETS
    buckets = [queries.report(conn, tenant, since + i * step, since + (i + 1) * step,
                              "service", sla) for i in range(BUCKETS)]  # fmt: skip
    return whole, buckets
