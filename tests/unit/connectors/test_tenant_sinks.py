"""A tenant's notification reaches that tenant's pager keys, webhooks and Slack bot only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.test_utils import TestServer

from connectors.sinks.delivery import Delivery
from connectors.sinks.ilert import IlertSink
from connectors.sinks.pagerduty import PagerDutySink
from connectors.sinks.webhook import WebhookSink
from schemas import Notification
from streams.notifier.sinks import ByTenant, aliases
from tests.fakes.http import FakeReceiver
from tests.unit.connectors.test_http_sinks import note

# one variable for everyone: the provider's aliases bare, each customer's prefixed
KEYS = aliases("RK-PROVIDER-DEFAULT, platform=RK-PLATFORM,\nacme/web=RK-ACME-WEB\n"
               "globex/default=RK-GLOBEX")  # fmt: skip


def of(tenant: str, target: str) -> Notification:
    return note(target=target).model_copy(update={"tenant": tenant})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[FakeReceiver, str, httpx.AsyncClient]]:
    fake = FakeReceiver()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
        yield fake, f"http://127.0.0.1:{server.port}", client
    await server.close()


async def test_pager_keys_resolve_within_the_notifications_tenant(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    sink = PagerDutySink(client, KEYS, f"{url}/v2/enqueue")
    for n in (of("default", "platform"), of("default", "unknown"), of("acme", "web"),
              of("globex", "anything")):  # fmt: skip
        assert (await sink.deliver(n)).ok
    keys = [r.json()["routing_key"] for r in fake.received]
    assert keys == ["RK-PLATFORM", "RK-PROVIDER-DEFAULT", "RK-ACME-WEB", "RK-GLOBEX"]
    # a customer's alias never falls back to the provider's keys or another tenant's
    for n in (of("acme", "platform"), of("acme", "other"), of("initech", "web")):
        missed = await sink.deliver(n)
        assert not missed.ok and not missed.retryable
        assert f"of tenant {n.tenant!r}" in missed.error
    assert len(fake.received) == 4


async def test_ilert_and_webhooks_resolve_the_same_way(
    receiver: tuple[FakeReceiver, str, httpx.AsyncClient],
) -> None:
    fake, url, client = receiver
    ilert = IlertSink(client, {"acme/web": "IL-ACME"}, f"{url}/events")
    assert (await ilert.deliver(of("acme", "web"))).ok
    assert not (await ilert.deliver(of("default", "web"))).ok
    assert fake.received[-1].json()["apiKey"] == "IL-ACME"
    hooks = WebhookSink(client, {"acme/ops": f"{url}/hook", "ops": f"{url}/provider"},
                        {"acme/ops": b"s1", "ops": b"s2"})  # fmt: skip
    assert (await hooks.deliver(of("acme", "ops"))).ok
    assert fake.received[-1].path == "/hook"
    unsigned = WebhookSink(client, {"acme/ops": f"{url}/hook"}, {"ops": b"provider's"})
    refused = await unsigned.deliver(of("acme", "ops"))
    assert not refused.ok and "WEBHOOK_SECRETS" in refused.error


class Recording:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def deliver(self, n: Notification) -> Delivery:
        self.seen.append(n.tenant)
        return Delivery(ok=True)


async def test_a_tenant_with_its_own_slack_workspace_is_posted_through_its_own_bot() -> None:
    provider, acme = Recording(), Recording()
    sink = ByTenant(provider, {"acme": acme})
    for tenant in ("default", "acme", "globex"):
        assert (await sink.deliver(of(tenant, "#alerts"))).ok
    assert acme.seen == ["acme"] and provider.seen == ["default", "globex"]
    alone = await ByTenant(None, {"acme": acme}).deliver(of("globex", "#alerts"))
    assert not alone.ok and "no Slack workspace for tenant 'globex'" in alone.error
