"""A local fake of the Slack Web API that slack-sdk talks to through `base_url`.

Records every call; `fail(method, status, error, headers)` queues failures,
`hang(method, seconds)` delays the next answer (a client-side timeout), and
`latency` delays every answer (benchmarks use Slack-like ~100 ms).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> msgs
    failures: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    latency: float = 0.0
    # called after Slack acted on a call and before it answers (fault tests kill there)
    on_call: Callable[[str, dict[str, Any]], None] | None = None
    hangs: dict[str, list[float]] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(self, method: str, status: int, error: str, headers: dict[str, str] | None = None
             ) -> None:  # fmt: skip
        self.failures.setdefault(method, []).append((status, error, headers or {}))

    def hang(self, method: str, seconds: float) -> None:
        self.hangs.setdefault(method, []).append(seconds)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        return app

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                args.update(orjson.loads(raw or b"{}"))
            else:
                args.update(dict(await request.post()))
        self.calls.append((method, args))
        delay = self.hangs[method].pop(0) if self.hangs.get(method) else self.latency
        queued = self.failures.get(method)
        if queued:
            status, error, headers = queued.pop(0)
            await asyncio.sleep(delay)
            return web.json_response({"ok": False, "error": error}, status=status,
                                     headers=headers)  # fmt: skip
        # Slack acts first and answers late: a client that times out may still have posted
        answer = self._answer(method, args)
        if self.on_call is not None:
            self.on_call(method, args)
        await asyncio.sleep(delay)
        return web.json_response(answer)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            channel = args["channel"]
            ts = f"1700000000.{next(self._ts):06d}"
            msg = {"ts": ts, "text": args.get("text"), "metadata": args.get("metadata")}
            if not args.get("thread_ts"):
                self.messages.setdefault(channel, []).insert(0, msg)
            return {"ok": True, "channel": channel, "ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D{args['users']}"}}
        if method == "conversations.history":
            return {"ok": True, "messages": self.messages.get(args["channel"], [])}
        return {"ok": True}
