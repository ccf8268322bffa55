"""`tocsin run notifier`."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import cast

import click
import structlog

from connectors.sinks.delivery import Sink
from streams.health import Health, HealthServer
from streams.notifier.console import ConsoleSink
from streams.notifier.worker import Notifier, NotifierMetrics
from streams.settings import KafkaSettings


def _secret(name: str) -> str | None:
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else os.environ.get(name)


@click.command()
@click.option("--health-port", default=9400, show_default=True, type=int)
def notifier(health_port: int) -> None:
    """Deliver the notifications outbox (Slack with SLACK_BOT_TOKEN, else the console)."""
    settings = KafkaSettings()
    token = _secret("SLACK_BOT_TOKEN")
    base_url = os.environ.get("TOCSIN_SLACK_BASE_URL")  # a local fake Slack, for tests
    sinks: dict[str, Sink] = {"*": ConsoleSink()}
    metrics = NotifierMetrics()
    health = Health()
    worker = Notifier(settings, sinks, metrics=metrics, health=health)
    if token or base_url:
        from slack_sdk.web.async_client import AsyncWebClient

        from connectors.sinks.slack import SlackClient, SlackSink

        client = AsyncWebClient(token=token or "xoxb-local", base_url=base_url or
                                "https://slack.com/api/")  # fmt: skip
        # AsyncWebClient's keyword-only signatures satisfy the sink's Protocol at runtime
        slack = SlackSink(cast("SlackClient", client), worker.state)
        sinks["slack"] = sinks["slack_dm"] = slack
    server = HealthServer(health, metrics.registry, port=health_port).start()
    structlog.get_logger(__name__).info("health_server", health_port=server.port,
                                        slack="api" if "slack" in sinks else "console")  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.run(stop)
    finally:
        server.stop()
