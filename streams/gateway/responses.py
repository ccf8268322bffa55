"""The gateway's JSON answers, shared by app.py and the route modules (sources.py,
slack.py), so that the routes need nothing of app.py at run time."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from streams.gateway.limits import retry_after


def json_response(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
                  ) -> web.Response:  # fmt: skip
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json",
                        headers=headers)  # fmt: skip


def rate_limited(wait_s: float) -> web.Response:
    return json_response(429, {"error": "rate limit of this credential exceeded: retry later"},
                         {"Retry-After": retry_after(wait_s)})  # fmt: skip


def pagerduty_throttled(wait_s: float) -> web.Response:
    return json_response(429, {"status": "throttle event",
                               "message": "Requests for this routing key are arriving too "
                                          "quickly: retry later"},
                         {"Retry-After": retry_after(wait_s)})  # fmt: skip


def unauthorized() -> web.Response:
    return json_response(401, {"error": "missing or invalid bearer token"},
                         {"WWW-Authenticate": "Bearer"})  # fmt: skip
