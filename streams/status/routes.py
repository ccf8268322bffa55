"""The pages, served by the API worker: `/status/{tenant}/{page}` (HTML), `.../index.json`
and `.../feed.atom`. A public page needs nothing; a private page one of its tokens (as a
bearer token, or the password of HTTP basic auth so a browser asks for it without any
script) or an API token of the tenant; an internal page a token of the provider's own
staff (tenant `default`). The console serves the same pages to its sessions under
`/console/status/{tenant}/{page}`. An unknown tenant or page and a page the caller may
not read answer alike (404 or 401), so a page's existence leaks nothing more."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping

from aiohttp import web

from schemas.status import Page, PageView, StatusConfig
from streams.api.app import CONSOLE, Api, ApiError, json
from streams.api.auth import Principal, digest
from streams.console.session import COOKIE
from streams.console.web import SECURITY_HEADERS, SESSIONS
from streams.status import render, store
from streams.status.config import DEFAULT

PAGES = web.AppKey("status_pages", dict[str, StatusConfig])
HERE = render.HERE
# a page is the same for all who may read it: drawn at most this often
PAGE_TTL_S = 2.0
_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy":
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"}  # fmt: skip


def add_routes(api: Api, app: web.Application, pages: Mapping[str, StatusConfig]) -> None:
    app[PAGES] = dict(pages)
    cache: dict[tuple[str, str], tuple[float, PageView]] = {}
    drawn: dict[tuple[str, str], tuple[PageView, bytes]] = {}

    async def view(request: web.Request, console: bool = False) -> tuple[Page, PageView]:
        tenant, pid = request.match_info["tenant"], request.match_info["page"]
        status: StatusConfig | None = request.app[PAGES].get(tenant)
        page = status.page(pid) if status is not None else None
        if status is None or page is None:
            raise ApiError(404, f"no status page {tenant}/{pid}")
        if page.audience != "public":
            _authorise(api, request, tenant, page, console)
        key = (tenant, pid)
        hit = cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return page, hit[1]
        v = await api.db(store.page_view, tenant, status, page, api.clock())
        cache[key] = (time.monotonic() + PAGE_TTL_S, v)
        return page, v

    def headers(page: Page) -> dict[str, str]:
        cache_control = "public, max-age=5" if page.audience == "public" else "no-store"
        return {**_HEADERS, "Cache-Control": cache_control}

    async def page_html(request: web.Request) -> web.StreamResponse:
        console = request.path.startswith(CONSOLE + "/")
        try:
            page, v = await view(request, console)
        except ApiError as exc:
            return _failed(exc)
        if "application/json" in request.headers.get("Accept", "") and not console:
            return json(200, v, headers(page))
        k = (v.tenant, v.page)
        hit = drawn.get(k)
        if hit is None or hit[0] is not v:  # the page's HTML, drawn once per view
            hit = drawn[k] = (v, render.html(v, _base(request)).encode())
        return web.Response(body=hit[1], content_type="text/html", charset="utf-8",
                            headers=headers(page))  # fmt: skip

    async def page_json(request: web.Request) -> web.StreamResponse:
        page, v = await view(request)
        return json(200, v, headers(page))

    async def feed(request: web.Request) -> web.StreamResponse:
        page, v = await view(request)
        url = str(request.url.with_path(_base(request)).with_query(None))
        return web.Response(
            body=render.atom(v, url).encode(),
            headers={**headers(page), "Content-Type": "application/atom+xml; charset=utf-8"},
        )

    base = "/status/{tenant}/{page}"
    # "_" is in no tenant id: the files never shadow a tenant's pages
    app.router.add_static("/status/_static", HERE / "static")
    app.router.add_get(base, page_html)
    app.router.add_get(base + "/index.json", page_json)
    app.router.add_get(base + "/feed.atom", feed)
    app.router.add_get(CONSOLE + base, page_html)


def _base(request: web.Request) -> str:
    return f"/status/{request.match_info['tenant']}/{request.match_info['page']}"


def _failed(exc: ApiError) -> web.Response:
    resp = web.Response(status=exc.status, text=f"{exc.status}: {exc.error}\n",
                        headers=dict(_HEADERS))  # fmt: skip
    if exc.status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="status", charset="UTF-8"'
    return resp


def _authorise(api: Api, request: web.Request, tenant: str, page: Page, console: bool) -> None:
    who: Principal | None = None
    if console:
        s = request.app[SESSIONS].get(request.cookies.get(COOKIE))
        who = s.principal if s is not None else None
    else:
        token = _token(request.headers.get("Authorization", ""))
        if token:
            if page.audience == "private" and digest(token) in page.tokens:
                return
            who = api.tokens.principal(f"Bearer {token}")
    if who is not None:
        if page.audience == "private" and who.tenant in (tenant, DEFAULT):
            return
        if page.audience == "internal" and who.tenant == DEFAULT:
            return
        raise ApiError(404, f"no status page {tenant}/{page.id}")
    raise ApiError(401, "this status page needs its token (as the password) or a login")


def _token(authorization: str) -> str:
    scheme, _, rest = authorization.strip().partition(" ")
    rest = rest.strip()
    if len(rest) > 1024:
        return ""
    if scheme.lower() == "bearer":
        return rest
    if scheme.lower() == "basic":
        try:
            raw = base64.b64decode(rest, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return ""
        return raw.partition(":")[2]
    return ""
