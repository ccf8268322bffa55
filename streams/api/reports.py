"""/api/v1/reports/sla: per tenant and month, MTTA, MTTR and acknowledgement-SLA
breaches (what a provider bills against), and CSV for every report.

A report is of the request's tenant; the provider role may ask for every tenant at once
(``tenants=all``), each measured against its own ``ack_sla``. Answered as JSON, or as
CSV when asked (``Accept: text/csv`` or ``?format=csv``), one row per tenant and month.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas.api import Report, SlaQuery, SlaReport
from streams.api.app import PLUMBING, Api, ApiError, json, problem
from streams.store import queries

SLA_COLUMNS = ("tenant", "month", "incidents", "acknowledged", "resolved", "mtta_s", "mttr_s",
               "mttr_p90_s", "ack_sla_breaches", "ack_sla_met_pct")  # fmt: skip
GROUP_COLUMNS = ("key", "incidents", "acknowledged", "resolved", "mtta_s", "mttr_s",
                 "mttr_p50_s", "mttr_p90_s", "mttr_p99_s", "ack_sla_breaches")  # fmt: skip
MAX_MONTHS = 36


def add_routes(api: Api, app: web.Application) -> None:
    async def sla(request: web.Request) -> web.Response:
        q = sla_query(request)
        who = api.principal(request)
        if q.tenants == "all" and not who.provider:
            raise ApiError(403, f"query.tenants: role {who.role!r} reports on its own tenant "
                           "only (needs provider)", "tenants")  # fmt: skip
        tenants = sorted(api.configs) if q.tenants == "all" else [who.tenant]
        since, until = months(q, api.clock())
        slas = {t: dict(api.configs[t].ack_sla) if t in api.configs else dict(api.cfg.ack_sla)
                for t in tenants}  # fmt: skip
        rows = await api.db(queries.sla_months, tenants, since, until, slas)
        doc = SlaReport(since=since, until=until, months=rows,
                        ack_sla_s={t: {p: d.total_seconds() for p, d in sorted(s.items())}
                                   for t, s in slas.items()})  # fmt: skip
        if wants_csv(request):
            return csv_response([m.model_dump() for m in doc.months], SLA_COLUMNS,
                                f"sla-{since:%Y-%m}-{_last_month(until)}.csv")  # fmt: skip
        return json(200, doc)

    app.router.add_get("/api/v1/reports/sla", sla)


def sla_query(request: web.Request) -> SlaQuery:
    doc = {k: v for k, v in request.query.items() if k not in PLUMBING}
    try:
        return SlaQuery.model_validate(doc)
    except ValidationError as exc:
        raise problem(exc, "query") from None


def months(q: SlaQuery, now: datetime) -> tuple[datetime, datetime]:
    """[first instant of ``from``, first instant after ``to``), in UTC."""
    this = datetime(now.year, now.month, 1, tzinfo=UTC)
    to = _month(q.to) if q.to else this
    since = _month(q.from_) if q.from_ else _shift(to, -2)
    until = _shift(to, 1)
    if since > to:
        raise ApiError(400, "query.from: must not be after to", "from")
    if (until.year - since.year) * 12 + until.month - since.month > MAX_MONTHS:
        raise ApiError(400, f"query.from: at most {MAX_MONTHS} months at once", "from")
    return since, until


def _month(text: str) -> datetime:
    year, month = text.split("-")
    return datetime(int(year), int(month), 1, tzinfo=UTC)


def _shift(at: datetime, by: int) -> datetime:
    n = at.year * 12 + at.month - 1 + by
    return datetime(n // 12, n % 12 + 1, 1, tzinfo=UTC)


def _last_month(until: datetime) -> str:
    return f"{until - timedelta(days=1):%Y-%m}"


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None and fmt not in ("csv", "json"):
        raise ApiError(400, f"query.format: {fmt[:20]!r} is not csv or json", "format")
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("Accept", ""))


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                 filename: str) -> web.Response:  # fmt: skip
    """RFC 4180 CSV with a header row; empty cells for values not measured."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else _cell(r.get(c)) for c in columns])
    disposition = f'attachment; filename="{filename}"'
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": disposition})  # fmt: skip


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    # a cell a spreadsheet would run as a formula: kept as text
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def report_response(request: web.Request, doc: Report) -> web.Response:
    """/api/v1/reports as JSON, or its groups and total as CSV."""
    if not wants_csv(request):
        return json(200, doc)
    rows = [g.model_dump() for g in [*doc.groups, doc.total]]
    name = f"report-{doc.group_by}-{doc.since:%Y%m%d}-{doc.until:%Y%m%d}.csv"
    return csv_response(rows, GROUP_COLUMNS, name)
