"""Deliver notifications to Slack with slack-sdk: one message per incident per channel,
updated in place, the timeline in its thread, a DM to each paged user.

Idempotent across crashes: the (incident, channel) -> ts map lives in a store the
runtime persists, and the message to update is the one recorded there. Only when the
store says an earlier attempt may have posted without the ts being recorded (a process
that died between Slack's answer and the record, a call that timed out after Slack
acted) is the message looked for in the channel by its metadata (conversations.history
with metadata, a bounded number of pages), so Slack never shows a second message for
the same incident and channel and an ordinary post or update reads no history. The message's
metadata names the notification it was posted for and the one it was last updated
for, each thread reply's names its own: a notification delivered again (a crash before
its receipt, a retry after a failed call) neither repeats the update nor adds a
second line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError

from connectors.sinks.delivery import Delivery, parse_retry_after
from connectors.slack.render import blocks, headline, timeline_line
from schemas.notifications import Notification

EVENT_TYPE = "tocsin_incident"  # metadata of the one message per incident and channel
PAGE_EVENT_TYPE = "tocsin_page"  # metadata of a DM page
REPLY_EVENT_TYPE = "tocsin_timeline"  # metadata of a timeline line in the thread
_REPLY_PAGES = 5  # of 200 replies, from a thread's start, searched for lines already there
_HISTORY_PAGES = 5  # of 200 messages, newest first, searched for one posted unrecorded


class SlackClient(Protocol):
    """The slice of slack_sdk.web.async_client.AsyncWebClient this sink uses."""

    async def chat_postMessage(self, **kwargs: Any) -> Any: ...
    async def chat_update(self, **kwargs: Any) -> Any: ...
    async def conversations_open(self, **kwargs: Any) -> Any: ...
    async def conversations_history(self, **kwargs: Any) -> Any: ...
    async def conversations_replies(self, **kwargs: Any) -> Any: ...
    async def conversations_list(self, **kwargs: Any) -> Any: ...


class MessageStore(Protocol):
    """(incident, target) -> "channel_id/ts" of the incident's message in that channel."""

    def get(self, incident_id: str, channel: str) -> str | None: ...
    def put(self, incident_id: str, channel: str, ts: str) -> None: ...
    def may_have_sent(self, notification_id: str) -> bool:
        """Whether an earlier process may have delivered this notification without its
        outcome being recorded (then Slack is searched for what it already shows)."""
        ...


class SlackSink:
    def __init__(self, client: SlackClient, store: MessageStore) -> None:
        self.client = client
        self.store = store
        self._ids: dict[str, str] = {}  # channel name -> id
        # posts sent by this process whose answer was not recorded (a timeout, an error
        # after Slack acted): the next attempt looks in Slack before posting again
        self._unanswered: set[str] = set()

    async def deliver(self, n: Notification) -> Delivery:
        started = time.perf_counter()
        try:
            if n.channel == "slack_dm":
                ref = await self._direct(n)
            else:
                ref = await self._channel(n)
        except SlackApiError as exc:
            failed = _failure(exc, started)
            if not failed.retryable:
                self._unanswered.discard(n.notification_id)  # refused: nothing was posted
            return failed
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # the network, not Slack's answer: always worth another attempt
            return Delivery(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}"[:500],
                            latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        return Delivery(ok=True, external_ref=ref, status_code=200,
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip

    async def _channel(self, n: Notification) -> str:
        # the store maps (incident, target) -> "channel_id/ts": chat.update and
        # conversations.history need the channel ID even when the target is "#name"
        found = self.store.get(n.incident_id, n.target)
        if found is None and self._unsure(n):
            found = await self._find(n)
        if found is None:
            self._unanswered.add(n.notification_id)
            resp = await self.client.chat_postMessage(
                channel=n.target, text=headline(n), blocks=blocks(n),
                metadata=_meta(EVENT_TYPE, incident_id=n.incident_id,
                               notification_id=n.notification_id),
            )  # fmt: skip
            channel, ts = str(resp.get("channel") or n.target), str(resp["ts"])
            self.store.put(n.incident_id, n.target, f"{channel}/{ts}")
            self._unanswered.discard(n.notification_id)
            return f"{channel}:{ts}"
        channel, _, ts = found.rpartition("/")
        channel = channel or n.target  # a mapping written before channel ids were kept
        self.store.put(n.incident_id, n.target, f"{channel}/{ts}")
        shown, replied = await self._shown(channel, ts)
        posted_for = shown.get("notification_id")
        if posted_for == n.notification_id or n.notification_id in replied:
            # the message was posted for this very notification, or its line is in the
            # thread (the update comes first): Slack already shows it, a redelivery after
            # a crash must not say it twice
            return f"{channel}:{ts}"
        if shown.get("updated_for") != n.notification_id:
            # chat.update replaces the metadata: the posted-for id is carried over
            kept = {"notification_id": str(posted_for)} if posted_for else {}
            meta = _meta(EVENT_TYPE, incident_id=n.incident_id, updated_for=n.notification_id,
                         **kept)  # fmt: skip
            await self.client.chat_update(channel=channel, ts=ts, text=headline(n),
                                          blocks=blocks(n), metadata=meta)  # fmt: skip
        await self.client.chat_postMessage(
            channel=channel, thread_ts=ts, text=timeline_line(n),
            metadata=_meta(REPLY_EVENT_TYPE, incident_id=n.incident_id,
                           notification_id=n.notification_id),
        )  # fmt: skip
        return f"{channel}:{ts}"

    async def _shown(self, channel: str, ts: str) -> tuple[dict[str, Any], set[str]]:
        """What Slack shows of an incident: its message's metadata payload (the
        notification it was posted for, and the one it was last updated for) and the
        notifications whose timeline lines are in its thread.

        Slack pages a thread from its start; past ``_REPLY_PAGES`` pages (an incident
        with a thousand timeline lines) lines are not looked for and may show twice.
        """
        parent: dict[str, Any] = {}
        replied: set[str] = set()
        cursor = None
        for _ in range(_REPLY_PAGES):
            resp = await self.client.conversations_replies(
                channel=channel, ts=ts, limit=200, cursor=cursor, include_all_metadata=True
            )
            for msg in resp.get("messages", []):
                meta = msg.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if msg.get("ts") == ts:
                    parent = payload if meta.get("event_type") == EVENT_TYPE else {}
                elif meta.get("event_type") == REPLY_EVENT_TYPE and payload.get("notification_id"):
                    replied.add(str(payload["notification_id"]))
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return parent, replied

    def _unsure(self, n: Notification) -> bool:
        return n.notification_id in self._unanswered or self.store.may_have_sent(n.notification_id)

    async def _find(self, n: Notification) -> str | None:
        """Recover a message posted unrecorded, by its metadata: "channel/ts"."""
        channel = await self._channel_id(n.target)
        if channel is None:
            return None
        ts = await self._search(channel, lambda meta, payload: (
            meta.get("event_type") == EVENT_TYPE and payload.get("incident_id") == n.incident_id
        ))  # fmt: skip
        return None if ts is None else f"{channel}/{ts}"

    async def _search(self, channel: str, match: Callable[[dict[str, Any], dict[str, Any]], bool]
                      ) -> str | None:  # fmt: skip
        """The ts of the newest message ``match`` accepts, among the newest
        ``_HISTORY_PAGES`` pages: the message looked for was posted by an attempt that
        died moments ago, so it is among the newest; the bound keeps a busy channel
        from costing an unbounded history read."""
        cursor = None
        for _ in range(_HISTORY_PAGES):
            resp = await self.client.conversations_history(
                channel=channel, limit=200, cursor=cursor, include_all_metadata=True
            )
            for msg in resp.get("messages", []):
                meta = msg.get("metadata") or {}
                if match(meta, meta.get("event_payload") or {}):
                    return str(msg["ts"])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    async def _channel_id(self, target: str) -> str | None:
        """Channel IDs pass through; ``#name`` is looked up once (conversations.list)."""
        if not target.startswith("#"):
            return target
        name = target[1:]
        if name not in self._ids:
            cursor = None
            while True:
                resp = await self.client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True,
                    limit=1000, cursor=cursor)  # fmt: skip
                for ch in resp.get("channels", []):
                    self._ids[str(ch.get("name"))] = str(ch.get("id"))
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor or name in self._ids:
                    break
        return self._ids.get(name)

    async def _direct(self, n: Notification) -> str:
        """A page by DM, once per notification: a DM that an earlier attempt may have
        posted unrecorded is looked for by its metadata in the conversation first."""
        opened = await self.client.conversations_open(users=n.target)
        channel = str(opened["channel"]["id"])
        if self._unsure(n):
            ts = await self._search(channel, lambda meta, payload: (
                meta.get("event_type") == PAGE_EVENT_TYPE
                and payload.get("notification_id") == n.notification_id
            ))  # fmt: skip
            if ts is not None:
                self._unanswered.discard(n.notification_id)
                return f"{channel}:{ts}"
        self._unanswered.add(n.notification_id)
        resp = await self.client.chat_postMessage(
            channel=channel, text=headline(n), blocks=blocks(n),
            metadata={"event_type": PAGE_EVENT_TYPE,
                      "event_payload": {"notification_id": n.notification_id}},
        )  # fmt: skip
        self._unanswered.discard(n.notification_id)
        return f"{channel}:{resp['ts']}"


def _meta(event_type: str, **payload: str) -> dict[str, Any]:
    return {"event_type": event_type, "event_payload": payload}


def _failure(exc: SlackApiError, started: float) -> Delivery:
    status = getattr(exc.response, "status_code", None)
    headers = getattr(exc.response, "headers", {}) or {}
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    error = str(exc.response.get("error", "")) if exc.response is not None else str(exc)
    retryable = (
        status == 429
        or (status is not None and status >= 500)
        or error in ("ratelimited", "service_unavailable", "internal_error", "fatal_error")
    )
    latency = (time.perf_counter() - started) * 1000
    return Delivery(ok=False, retryable=retryable, retry_after=retry_after, status_code=status,
                    error=error or str(exc), latency_ms=latency)  # fmt: skip
