"""A local fake of the Slack Web API that slack-sdk talks to through `base_url`.

The demo runs it when no SLACK_BOT_TOKEN is set, so the notifier's real Slack
sink does real HTTP calls that the demo can show and count; tests and benchmarks
use it the same way.

Records every call; `fail(method, status, error, headers)` queues failures,
`hang(method, seconds)` delays the next answer (a client-side timeout), and
`latency` delays every answer (benchmarks use Slack-like ~100 ms).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from streams.gateway.app import RUNNER_ARGS


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> msgs
    # (channel, parent ts) -> replies, oldest first
    threads: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    latency: float = 0.0
    socket_sent: list[dict[str, Any]] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    # called after Slack acted on a call and before it answers (fault tests kill there)
    host: str = ""
    callers: list[str] = field(default_factory=list)  # per call, the ``caller`` of its URL
    names: dict[str, str] = field(default_factory=dict)  # channel name -> id
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
        app.router.add_get("/link", self._socket)
        app.router.add_route("*", "/api/{method}", self._handle)
        # ``/<caller>/api/...``: the same Slack, telling apart clients given different
        # base URLs (``caller`` says which made the call being answered)
        app.router.add_route("*", "/{caller}/api/{method}", self._handle)
        return app

    def send_over_socket(self, kind: str, payload: dict[str, Any]) -> str:
        """Queue a Socket Mode envelope (``interactive``, ``slash_commands``); its id."""
        envelope_id = f"env-{len(self.socket_sent) + 1}"
        self.socket_sent.append(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": True,
            }
        )
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: hello, then the queued envelopes; collects the app's acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(orjson.dumps({"type": "hello", "num_connections": 1}).decode())
        sent = 0
        while not ws.closed:
            while sent < len(self.socket_sent):
                await ws.send_str(orjson.dumps(self.socket_sent[sent]).decode())
                sent += 1
            try:
                msg = await ws.receive(timeout=0.1)
            except TimeoutError:
                continue
            if msg.type == web.WSMsgType.TEXT:
                self.socket_acks.append(orjson.loads(msg.data))
            elif msg.type in (web.WSMsgType.CLOSE, web.WSMsgType.CLOSED, web.WSMsgType.ERROR):
                break
        return ws

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
        self.callers.append(request.match_info.get("caller", ""))
        self.host = request.host
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
        if method in ("chat.postMessage", "chat.update"):
            refused = refused_by_slack(args)
            if refused:
                return {"ok": False, "error": refused}
        if method == "chat.postMessage":
            channel = self.names.get(str(args["channel"]).lstrip("#"), args["channel"])
            ts = f"{int(time.time())}.{next(self._ts):06d}"  # Slack's ts: Unix seconds
            msg: dict[str, Any] = {"ts": ts, "text": args.get("text"),
                                   "metadata": args.get("metadata")}  # fmt: skip
            if args.get("thread_ts"):
                msg["thread_ts"] = parent = str(args["thread_ts"])
                self.threads.setdefault((str(channel), parent), []).append(msg)
            else:
                self.messages.setdefault(channel, []).insert(0, msg)
            return {"ok": True, "channel": channel, "ts": ts}
        if method == "chat.update":
            shown = self._message(str(args["channel"]), str(args["ts"]))
            if shown is None:
                return {"ok": False, "error": "message_not_found"}
            shown["text"] = args.get("text")
            if args.get("metadata") is not None:  # Slack keeps the old metadata otherwise
                shown["metadata"] = args["metadata"]
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D{args['users']}"}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://{self.host}/link"}
        if method == "conversations.list":
            return {
                "ok": True,
                "channels": [{"id": i, "name": n} for n, i in self.names.items()],
                "response_metadata": {"next_cursor": ""},
            }
        if method == "conversations.history":
            # newest first, paged by ``limit`` (Slack's default 100) and ``cursor``
            listed = self.messages.get(args["channel"], [])
            start = int(args.get("cursor") or 0)
            end = start + int(args.get("limit") or 100)
            more = end < len(listed)
            return {"ok": True, "messages": [_shown(m, args) for m in listed[start:end]],
                    "has_more": more,
                    "response_metadata": {"next_cursor": str(end) if more else ""}}  # fmt: skip
        if method == "conversations.replies":
            return self._replies(args)
        return {"ok": True}

    def _message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self.messages.get(channel, []):
            if msg["ts"] == ts:
                return msg
        return None

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread as Slack answers it: the parent, then its replies oldest first,
        paged by ``limit`` and ``cursor``; an unthreaded message is a thread of one."""
        channel, ts = str(args["channel"]), str(args["ts"])
        parent = self._message(channel, ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        replies = self.threads.get((channel, ts), [])
        start = int(args.get("cursor") or 0)
        end = start + int(args.get("limit") or 1000)
        page = [parent, *replies[start:end]]
        more = end < len(replies)
        return {
            "ok": True,
            "messages": [_shown(m, args) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(end) if more else ""},
        }


def _shown(msg: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """A stored message as a read returns it: metadata only on request."""
    if str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
        return msg
    return {k: v for k, v in msg.items() if k != "metadata"}


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve ``app`` (the fake, or the gateway in tests) on 127.0.0.1, a free port, from
    its own loop; yields the base URL. The gateway's runner arguments apply."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, **RUNNER_ARGS)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


# Slack's bounds on a message: what it refuses instead of posting
_TEXT_MAX = 40_000
_SECTION_TEXT_MAX = 3000
_FIELD_TEXT_MAX = 2000
_FIELDS_MAX = 10
_ELEMENTS_MAX = 10
_BLOCKS_MAX = 50


def refused_by_slack(args: dict[str, Any]) -> str | None:
    """The error Slack answers for a message beyond its bounds, or None."""
    if len(str(args.get("text") or "")) > _TEXT_MAX:
        return "msg_too_long"
    blocks = args.get("blocks") or []
    if isinstance(blocks, (str, bytes)):
        blocks = orjson.loads(blocks)
    if len(blocks) > _BLOCKS_MAX:
        return "invalid_blocks"
    for block in blocks:
        texts = [block["text"]] if isinstance(block.get("text"), dict) else []
        fields = block.get("fields") or []
        elements = block.get("elements") or []
        if len(fields) > _FIELDS_MAX or len(elements) > _ELEMENTS_MAX:
            return "invalid_blocks"
        if any(len(f.get("text", "")) > _FIELD_TEXT_MAX for f in fields):
            return "invalid_blocks"
        texts += [e for e in elements if e.get("type") in ("mrkdwn", "plain_text")]
        if any(len(t.get("text", "")) > _SECTION_TEXT_MAX for t in texts):
            return "invalid_blocks"
    return None
