"""A local recording HTTP receiver standing in for PagerDuty, ilert or a webhook.

``fail(status, headers)`` queues answers, ``hang(seconds)`` delays the next answer
(a timeout from the sender's side), ``latency`` delays every answer (benchmarks).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FakeReceiver:
    status: int = 202
    answer: dict[str, Any] = field(default_factory=lambda: {"status": "success"})
    latency: float = 0.0
    received: list[Received] = field(default_factory=list)
    queued: list[tuple[int, dict[str, str], float]] = field(default_factory=list)

    def fail(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.queued.append((status, headers or {}, 0.0))

    def hang(self, seconds: float) -> None:
        self.queued.append((self.status, {}, seconds))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        status, headers, delay = (self.queued.pop(0) if self.queued
                                  else (self.status, {}, 0.0))  # fmt: skip
        if delay or self.latency:
            await asyncio.sleep(delay or self.latency)
        body = self.answer if status < 400 else {"status": "error", "message": "fake failure"}
        return web.json_response(body, status=status, headers=headers)
