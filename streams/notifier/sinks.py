"""Build the notifier's sinks from the environment; secrets from env or ``*_FILE``.

=============================  ===============================================
SLACK_BOT_TOKEN                xoxb-…; without it Slack goes to the console
SLACK_BOT_TOKENS               ``tenant=xoxb-…,...``: a tenant's own workspace
TOCSIN_SLACK_BASE_URL          another Slack Web API base (a local fake in tests)
PAGERDUTY_ROUTING_KEYS         ``alias=key,...`` (a bare key is the ``default``)
TOCSIN_PAGERDUTY_URL           Events API v2 endpoint (default PagerDuty's)
ILERT_API_KEYS                 ``alias=key,...`` like PagerDuty's
TOCSIN_ILERT_URL               ilert events endpoint
TOCSIN_WEBHOOK_URLS            ``alias=https://...,...`` (not secret)
WEBHOOK_SECRETS                ``alias=secret,...`` HMAC-SHA256 keys per alias
=============================  ===============================================

A notification's ``target`` names an alias, so keys and URLs never travel in events.
Entries are separated by commas or newlines (a mounted file holds one per line).

Tenants: a notification of tenant ``acme`` resolves its alias among the entries
``acme/<alias>=...`` only (then ``acme/default``), never the provider's own or another
tenant's (connectors/sinks/delivery.py ``for_tenant``). Its Slack messages go through
the bot of ``SLACK_BOT_TOKENS``' entry for ``acme`` if there is one (the customer's own
workspace), else through ``SLACK_BOT_TOKEN``'s (the provider's workspace, to the
channels the tenant's teams name).
"""

from __future__ import annotations

import os
from typing import cast

from connectors.sinks.delivery import Delivery, Sink
from connectors.sinks.http import make_client
from schemas.notifications import Notification
from streams.notifier.console import ConsoleSink
from streams.notifier.state import NotifierState
from streams.settings import secret


def aliases(raw: str | None) -> dict[str, str]:
    """``a=x,b=y`` -> {a: x, b: y}; a lone value without ``=`` is the ``default``."""
    out: dict[str, str] = {}
    for item in (raw or "").replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        alias, sep, value = item.partition("=")
        if sep and not alias.startswith(("http:", "https:")):
            out[alias.strip()] = value.strip()
        else:
            out["default"] = item
    return out


class ByTenant:
    """One sink per tenant that has its own (a Slack workspace), the provider's for the
    others."""

    def __init__(self, shared: Sink | None, own: dict[str, Sink]) -> None:
        self.shared, self.own = shared, own

    async def deliver(self, n: Notification) -> Delivery:
        sink = self.own.get(n.tenant, self.shared)
        if sink is None:
            why = f"no Slack workspace for tenant {n.tenant!r} (SLACK_BOT_TOKENS)"
            return Delivery(ok=False, error=f"{why} and no SLACK_BOT_TOKEN")
        return await sink.deliver(n)


def build_sinks(state: NotifierState) -> dict[str, Sink]:
    """Console for everything by default; real sinks where credentials are present."""
    sinks: dict[str, Sink] = {"*": ConsoleSink()}
    token = secret("SLACK_BOT_TOKEN")
    base_url = os.environ.get("TOCSIN_SLACK_BASE_URL")
    own = {t: v for t, v in aliases(secret("SLACK_BOT_TOKENS")).items() if t != "default"}
    if token or base_url or own:
        from slack_sdk.web.async_client import AsyncWebClient

        from connectors.sinks.slack import SlackClient, SlackSink

        def slack_sink(bot: str) -> Sink:
            client = AsyncWebClient(token=bot, timeout=10,
                                    base_url=base_url or "https://slack.com/api/")  # fmt: skip
            # AsyncWebClient's keyword-only signatures satisfy the sink's Protocol at runtime
            return SlackSink(cast("SlackClient", client), state)

        shared = slack_sink(token or "xoxb-local") if token or base_url else None
        slack = ByTenant(shared, {t: slack_sink(bot) for t, bot in own.items()}) if own else shared
        assert slack is not None
        sinks["slack"] = sinks["slack_dm"] = slack
    http = None
    pd_keys = aliases(secret("PAGERDUTY_ROUTING_KEYS"))
    if pd_keys:
        from connectors.sinks.pagerduty import EVENTS_URL, PagerDutySink

        http = http or make_client()
        sinks["pagerduty"] = PagerDutySink(
            http, pd_keys, os.environ.get("TOCSIN_PAGERDUTY_URL", EVENTS_URL)
        )
    ilert_keys = aliases(secret("ILERT_API_KEYS"))
    if ilert_keys:
        from connectors.sinks.ilert import EVENTS_URL as ILERT_URL
        from connectors.sinks.ilert import IlertSink

        http = http or make_client()
        sinks["ilert"] = IlertSink(http, ilert_keys, os.environ.get("TOCSIN_ILERT_URL", ILERT_URL))
    urls = aliases(os.environ.get("TOCSIN_WEBHOOK_URLS"))
    if urls:
        from connectors.sinks.webhook import WebhookSink

        http = http or make_client()
        keys = {k: v.encode() for k, v in aliases(secret("WEBHOOK_SECRETS")).items()}
        sinks["webhook"] = WebhookSink(http, urls, keys)
    return sinks
