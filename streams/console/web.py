"""The console's plumbing: templates, the session of a request, CSRF on every action.

Every page shows the tenant it is of. Provider staff (a token of the ``provider`` role)
switch tenants with the header's form, which keeps the choice in a cookie; every page
and action of their session then acts in that tenant."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from schemas.alerts import AnomalyDetail
from streams import display
from streams.api.app import CONSOLE, IDEMPOTENCY, PRINCIPAL, Api, ApiError, Handler
from streams.console.charts import spark
from streams.console.session import COOKIE, Session, Sessions
from streams.store import queries
from streams.store.projector import BATCH, SEEN_EVERY_S

HERE = Path(__file__).parent
NONE = "\N{EN DASH}"
SESSIONS = web.AppKey("console_sessions", Sessions)
SESSION = web.RequestKey("console_session", Session)  # the request's, once checked
TENANTS = web.AppKey("console_tenants", tuple[str, ...])
TENANT_COOKIE = "tocsin_console_tenant"
API = web.AppKey("console_api", Api)
# the store's freshness (when a projector last heard from Kafka, how far behind)
FRESHNESS: web.RequestKey[tuple[datetime, int] | None] = web.RequestKey("console_freshness")
# a projector reports every SEEN_EVERY_S: several missed reports mean it is not reading
STALE_S = 6 * SEEN_EVERY_S
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def seconds(value: float | None) -> str:
    """4m 12s, 2h 05m, 3d 4h: a duration as a responder reads it."""
    if value is None:
        return NONE
    s = round(value)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def number(value: float | None) -> str:
    return NONE if value is None else display.number(value)


def anomaly_spark(a: AnomalyDetail) -> Markup:
    band = (a.lower, a.upper) if a.lower is not None and a.upper is not None else None
    return spark(f"{a.hours()}, usual band shaded", a.recent, band)


def when(at: datetime | None) -> str:
    return NONE if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_env.filters["seconds"] = seconds
_env.filters["when"] = when
_env.filters["number"] = number


@jinja2.pass_context
def form_keys(ctx: Any) -> Markup:
    """Every action form's hidden fields: the session's CSRF token, and a key of the form's
    own (a double click or a resubmitted post is then one command)."""
    fields = Markup('<input type="hidden" name="csrf" value="{}">'
                    '<input type="hidden" name="idem" value="{}">')  # fmt: skip
    return fields.format(ctx["csrf"], uuid.uuid4().hex)


_env.filters["spark"] = anomaly_spark
_env.globals["form_keys"] = form_keys


def render(request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
    s: Session | None = request.get(SESSION)
    body = _env.get_template(template).render(
        base=CONSOLE, session=s, may_act=bool(s and s.principal.may("responder")),
        csrf=s.csrf if s else "", path=request.path, tenants=request.app.get(TENANTS, ()),
        stale=stale(request) if s else None, **ctx,
    )  # fmt: skip
    return web.Response(text=body, status=status, content_type="text/html",
                        headers=SECURITY_HEADERS)  # fmt: skip


# no inline script and no third-party anything: the pages load only what the API serves
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def session(request: web.Request) -> Session:
    """The request's session, or off to the login page."""
    s = request.app[SESSIONS].get(request.cookies.get(COOKIE))
    if s is None:
        raise web.HTTPSeeOther(f"{CONSOLE}/login")
    s = acting(request, s)
    request[SESSION] = s
    request[PRINCIPAL] = s.principal
    return s


async def action(request: web.Request) -> tuple[Session, dict[str, str]]:
    """An action form's session and fields: 403 without a session or with a CSRF token
    that is not the session's (a forged cross-site post has neither)."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    s = request.app[SESSIONS].get(request.cookies.get(COOKIE))
    if s is None or not Sessions.csrf_ok(s, form.get("csrf")):
        raise web.HTTPForbidden(text="403: missing or wrong CSRF token, or no session: "
                                "reload the page and try again")  # fmt: skip
    s = acting(request, s)
    request[SESSION] = s
    request[PRINCIPAL] = s.principal
    if form.get("idem"):
        # each drawn form has a key of its own: a double click or a resubmitted post is
        # the same command, applied once
        request[IDEMPOTENCY] = form["idem"]
    return s, form


def acting(request: web.Request, s: Session) -> Session:
    """A provider's session acts in the tenant it switched to; any other, in its own."""
    chosen = request.cookies.get(TENANT_COOKIE)
    if not s.principal.provider or not chosen or chosen == s.principal.tenant:
        return s
    if chosen not in request.app.get(TENANTS, ()):
        return s
    return replace(s, principal=s.principal.acting_for(chosen))


def failed(request: web.Request, status: int, error: str) -> web.Response:
    return render(request, "error.html", status=status, status_code=status, error=error)


def stale(request: web.Request) -> str | None:
    """What to tell a reader when the store may be showing an old picture: no projector
    has heard from Kafka for STALE_S, or one is more than a batch behind."""
    if FRESHNESS not in request:
        return None  # not looked up (the store away: the page says that itself)
    seen = request[FRESHNESS]
    if seen is None:
        return ("No projector has reported to this store yet: incidents may be missing "
                "here. Slack and pagers are not affected.")  # fmt: skip
    at, behind = seen
    age = (request.app[API].clock() - at).total_seconds()
    if age > STALE_S:
        return (f"The store has not heard from Kafka since {when(at)} ({seconds(age)} ago): "
                "what this console shows may be out of date (is `tocsin run projector` "
                "running?). Slack and pagers are not affected.")  # fmt: skip
    if behind > BATCH:
        return (f"The store is catching up with Kafka: {behind:,} records still to "
                "project, so recent changes may not show yet.")  # fmt: skip
    return None


def html_errors(handler: Handler) -> Handler:
    """The API's errors (the store away: 503) as a page rather than the API's JSON."""

    async def page(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            resp = failed(request, exc.status, exc.error)
            if exc.status == 503:
                resp.headers["Retry-After"] = "5"
            return resp

    return page


def with_freshness(handler: Handler) -> Handler:
    """A page that also says how fresh the store is (the banner `stale` words)."""

    async def page(request: web.Request) -> web.StreamResponse:
        with contextlib.suppress(ApiError):  # the store away: the page says that itself
            request[FRESHNESS] = await request.app[API].db(queries.store_freshness)
        return await handler(request)

    return page


def add(app: web.Application, method: str, path: str, handler: Handler) -> None:
    if method == "GET":
        handler = with_freshness(handler)
    app.router.add_route(method, path, html_errors(handler))
