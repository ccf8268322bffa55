"""Build the notifier's sinks from the environment; secrets from env or ``*_FILE``.

=============================  ===============================================
SLACK_BOT_TOKEN                xoxb-…; without it Slack goes to the console
TOCSIN_SLACK_BASE_URL          another Slack Web API base (a local fake in tests)
PAGERDUTY_ROUTING_KEYS         ``alias=key,...`` (a bare key is the ``default``)
TOCSIN_PAGERDUTY_URL           Events API v2 endpoint (default PagerDuty's)
ILERT_API_KEYS                 ``alias=key,...`` like PagerDuty's
TOCSIN_ILERT_URL               ilert events endpoint
TOCSIN_WEBHOOK_URLS            ``alias=https://...,...`` (not secret)
WEBHOOK_SECRETS                ``alias=secret,...`` HMAC-SHA256 keys per alias
=============================  ===============================================

A notification's ``target`` names an alias, so keys and URLs never travel in events.
"""

from __future__ import annotations

import os
from typing import cast

from connectors.sinks.delivery import Sink
from connectors.sinks.http import make_client
from streams.notifier.console import ConsoleSink
from streams.notifier.state import NotifierState
from streams.settings import secret


def aliases(raw: str | None) -> dict[str, str]:
    """``a=x,b=y`` -> {a: x, b: y}; a lone value without ``=`` is the ``default``."""
    out: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        alias, sep, value = item.partition("=")
        if sep and not alias.startswith(("http:", "https:")):
            out[alias.strip()] = value.strip()
        else:
            out["default"] = item
    return out


def build_sinks(state: NotifierState) -> dict[str, Sink]:
    """Console for everything by default; real sinks where credentials are present."""
    sinks: dict[str, Sink] = {"*": ConsoleSink()}
    token = secret("SLACK_BOT_TOKEN")
    base_url = os.environ.get("TOCSIN_SLACK_BASE_URL")
    if token or base_url:
        from slack_sdk.web.async_client import AsyncWebClient

        from connectors.sinks.slack import SlackClient, SlackSink

        client = AsyncWebClient(token=token or "xoxb-local", timeout=10,
                                base_url=base_url or "https://slack.com/api/")  # fmt: skip
        # AsyncWebClient's keyword-only signatures satisfy the sink's Protocol at runtime
        slack = SlackSink(cast("SlackClient", client), state)
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
