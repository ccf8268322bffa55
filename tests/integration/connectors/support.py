"""Run aiohttp apps (the gateway, fake Slack) on a background thread for sync tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from connectors.slack.auth import StaticDirectory
from connectors.slack.signature import SignatureVerifier
from streams.demo.fake_slack import serve as serve
from streams.gateway.app import Gateway, GatewayMetrics
from streams.health import Health
from streams.settings import KafkaSettings

TOKEN = "t0ken"
# samples must be recent: the gateway refuses event times more than 7 days old
RECENT = datetime.now(UTC).replace(microsecond=0)
STAMP = RECENT.isoformat().replace("+00:00", "Z")
SIGNING = "signing-secret"


def make_gateway(settings: KafkaSettings, **overrides: object) -> Gateway:
    directory = StaticDirectory.of(anywhere=["U_SRE"], payments=["U_CAROL"], platform=["U_ALICE"])
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
