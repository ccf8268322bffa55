"""PagerDuty, ilert and webhook sinks against local HTTP receivers, through real httpx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp.test_utils import TestServer

from connectors.sinks.ilert import IlertSink
from connectors.sinks.pagerduty import PagerDutySink
from connectors.sinks.webhook import WebhookSink, verify
from schemas import Notification, decode
from tests.fakes.http import FakeReceiver

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def note(
    status: str = "triggered", kind: str = "trigger", target: str = "platform"
) -> Notification:
    return Notification(
        notification_id=f"inc-7/{kind}",
        incident_id="inc-7",
        kind=kind,
        channel="pagerduty",  # type: ignore[arg-type]
        target=target,
        title="Disk 97% on db-1",
        status=status,
        severity="error",  # type: ignore[arg-type]
        priority="P2",
        service="db",
        team="platform",
        labels={"alertname": "DiskFull", "instance": "db-1"},
        value=97.0,
        threshold=90.0,
        runbook_url="https://rb/disk",
        opened_at=T0,
        at=T0,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[FakeReceiver, str, httpx.AsyncClient]]:
    fake = FakeReceiver()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as client:
        yield fake, f"http://127.0.0.1:{server.port}", client
    await server.close()


async def test_pagerduty_trigger_acknowledge_resolve_share_one_dedup_key(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = PagerDutySink(
        client, {"platform": "RKEY1"}, f"{url}/v2/enqueue", incident_url="https://tocsin/i/{id}"
    )
    for n in (note(), note("acknowledged", "update"), note("resolved", "resolve")):
        assert (await sink.deliver(n)).ok
    events = [r.json() for r in fake.received]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {"inc-7"}
    assert {e["routing_key"] for e in events} == {"RKEY1"}
    payload = events[0]["payload"]
    assert payload["severity"] == "error" and payload["source"] == "db-1"
    assert payload["custom_details"]["value"] == 97.0 and payload["class"] == "DiskFull"
    assert {link["href"] for link in events[0]["links"]} == {
        "https://rb/disk",
        "https://tocsin/i/inc-7",
    }


async def test_pagerduty_429_is_retryable_with_retry_after_and_400_is_final(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = PagerDutySink(client, {"default": "K"}, f"{url}/v2/enqueue")
    fake.fail(429, {"Retry-After": "12"})
    throttled = await sink.deliver(note())
    assert not throttled.ok and throttled.retryable and throttled.retry_after == 12.0
    fake.fail(400)
    invalid = await sink.deliver(note())
    assert not invalid.ok and not invalid.retryable and invalid.status_code == 400
    fake.hang(2.0)  # longer than the client's 0.5 s timeout
    slow = await sink.deliver(note())
    assert not slow.ok and slow.retryable and "Timeout" in slow.error


async def test_pagerduty_without_a_routing_key_is_a_final_failure() -> None:
    async with httpx.AsyncClient() as client:
        result = await PagerDutySink(client, {"other": "K"}).deliver(note(target="nobody"))
    assert not result.ok and not result.retryable and "routing key" in result.error


async def test_ilert_alert_accept_resolve(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = IlertSink(client, {"platform": "il1"}, f"{url}/api/events")
    for n in (note(), note("acknowledged", "update"), note("resolved", "resolve")):
        assert (await sink.deliver(n)).ok
    events = [r.json() for r in fake.received]
    assert [e["eventType"] for e in events] == ["ALERT", "ACCEPT", "RESOLVE"]
    assert {e["alertKey"] for e in events} == {"inc-7"} and events[0]["apiKey"] == "il1"


async def test_webhook_body_is_signed_and_verifiable(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = WebhookSink(client, {"ops": f"{url}/hook"}, {"ops": b"s3cret"})
    assert (await sink.deliver(note(target="ops"))).ok
    [got] = fake.received
    ts, sig = got.headers["X-Tocsin-Timestamp"], got.headers["X-Tocsin-Signature"]
    assert verify(b"s3cret", ts, got.body, sig, now=time.time())
    assert not verify(b"wrong", ts, got.body, sig, now=time.time())
    assert not verify(b"s3cret", ts, got.body + b" ", sig, now=time.time())
    assert not verify(b"s3cret", ts, got.body, sig, now=time.time() + 600), "stale"
    assert decode(Notification, got.body).incident_id == "inc-7"
    assert got.headers["X-Tocsin-Delivery"] == "inc-7/trigger"


async def test_webhook_without_a_secret_is_never_sent_unsigned(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = WebhookSink(client, {"ops": f"{url}/hook", "bare": f"{url}/bare"}, {"ops": b"s3cret"})
    result = await sink.deliver(note(target="bare"))
    assert not result.ok and not result.retryable
    assert "no WEBHOOK_SECRETS entry for 'bare'" in result.error
    assert fake.received == [], "nothing reached the receiver"
