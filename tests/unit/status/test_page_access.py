"""Who may read which page: a private page's own token, an API token of the tenant or of
the provider; an internal page the provider's only; another tenant's token finds nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from schemas.status import Page
from streams.api.app import ApiError
from streams.api.auth import Principal, digest
from streams.status.routes import _authorise

TOKEN = "tsn_page"
PRIVATE = Page(id="staff", audience="private", title="Staff", tokens=[digest(TOKEN)])
INTERNAL = Page(id="noc", audience="internal", title="NOC")
PRINCIPALS = {"tsn_acme": Principal("erin", "viewer", "acme"),
              "tsn_globex": Principal("gina", "admin", "globex"),
              "tsn_provider": Principal("alice", "viewer", "default")}  # fmt: skip


class _Tokens:
    def principal(self, authorization: str | None) -> Principal | None:
        return PRINCIPALS.get((authorization or "").removeprefix("Bearer "))


class _Api:
    tokens = _Tokens()


def _may(page: Page, authorization: str | None) -> str:
    headers = {"Authorization": authorization} if authorization else {}
    request = make_mocked_request("GET", f"/status/acme/{page.id}", headers=headers)
    try:
        _authorise(_Api(), request, "acme", page, console=False)  # type: ignore[arg-type]
    except ApiError as exc:
        return str(exc.status)
    return "ok"


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()


@pytest.mark.parametrize(("page", "authorization", "answer"), [
    (PRIVATE, None, "401"),
    (PRIVATE, f"Bearer {TOKEN}", "ok"),
    (PRIVATE, _basic(TOKEN), "ok"),
    (PRIVATE, _basic("wrong"), "401"),
    (PRIVATE, "Bearer tsn_acme", "ok"),
    (PRIVATE, "Bearer tsn_provider", "ok"),
    (PRIVATE, "Bearer tsn_globex", "404"),
    (INTERNAL, f"Bearer {TOKEN}", "401"),
    (INTERNAL, "Bearer tsn_acme", "404"),
    (INTERNAL, "Bearer tsn_provider", "ok"),
])  # fmt: skip
def test_who_may_read_a_page(page: Page, authorization: str | None, answer: str) -> None:
    assert _may(page, authorization) == answer


def test_a_console_session_of_another_tenant_finds_nothing() -> None:
    class _Sessions:
        def get(self, sid: Any) -> Any:
            return type("S", (), {"principal": PRINCIPALS["tsn_globex"]})()

    from streams.console.web import SESSIONS

    request = make_mocked_request("GET", "/console/status/acme/staff",
                                  headers={"Cookie": "tocsin_console=x"},
                                  app=_app({SESSIONS: _Sessions()}))  # fmt: skip
    with pytest.raises(ApiError) as err:
        _authorise(_Api(), request, "acme", PRIVATE, console=True)  # type: ignore[arg-type]
    assert err.value.status == 404


def _app(items: dict[Any, Any]) -> Any:
    from aiohttp import web

    app = web.Application()
    for k, v in items.items():
        app[k] = v
    return app
