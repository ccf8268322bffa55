"""Run aiohttp apps (the gateway, fake Slack) on a background thread for sync tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from connectors.slack.auth import StaticDirectory
from connectors.slack.signature import SignatureVerifier
from streams.gateway.app import RUNNER_ARGS, Gateway, GatewayMetrics
from streams.health import Health
from streams.settings import KafkaSettings

TOKEN = "t0ken"
SIGNING = "signing-secret"


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) from its own loop; yields the base URL."""
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


def make_gateway(settings: KafkaSettings, **overrides: object) -> Gateway:
    directory = StaticDirectory.of(anywhere=["U_SRE"], payments=["U_CAROL"])
    kwargs: dict[str, object] = {"directory": directory, "pagerduty_keys": {"RKEY"}}
    kwargs.update(overrides)
    return Gateway(
        settings, {TOKEN}, SignatureVerifier(SIGNING), None, Health(), GatewayMetrics(), **kwargs
    )  # type: ignore[arg-type]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def read_keyed(settings: KafkaSettings, topic: str) -> list[tuple[bytes, bytes]]:
    """read_topic_keyed, retried: a topic created a moment ago may not have a leader yet."""
    from confluent_kafka import KafkaException

    from streams.kafka import read_topic_keyed

    for _ in range(20):
        try:
            return read_topic_keyed(settings, topic)
        except KafkaException:
            time.sleep(0.5)
    return read_topic_keyed(settings, topic)


def read_values(settings: KafkaSettings, topic: str) -> list[bytes]:
    return [v for _, v in read_keyed(settings, topic)]
