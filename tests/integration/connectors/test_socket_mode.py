"""Socket Mode: a button click and a slash command arrive over slack-sdk's websocket
client (from a local fake of Slack's Socket Mode endpoint) and become Commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from schemas import Command, Incident, decode, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack
from streams.gateway.slack import enable_socket_mode
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import make_gateway, read_values, serve

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_actions_over_socket_mode(kafka_settings: KafkaSettings, topics: Catalog) -> None:
    producer = make_producer(kafka_settings)
    incident = Incident(
        incident_id="inc-pay-2",
        group_key="g",
        version=1,
        status="triggered",
        title="Refunds failing",
        severity="error",
        priority="P2",
        team="payments",
        opened_at=T0,
    )
    producer.produce(topics.name("incidents"), key=b"inc-pay-2", value=encode(incident))
    assert producer.flush(10) == 0
    slack = FakeSlack()
    with serve(slack.app()) as slack_url:
        gateway = make_gateway(kafka_settings)
        app = gateway.app()
        enable_socket_mode(gateway, app, "xapp-test", "xoxb-test", f"{slack_url}/api/")
        click = slack.send_over_socket(
            "interactive",
            {
                "type": "block_actions",
                "user": {"id": "U_CAROL"},
                "actions": [{"action_id": "tocsin_ack", "value": "inc-pay-2"}],
            },
        )
        slash = slack.send_over_socket(
            "slash_commands",
            {"command": "/incident", "text": "resolve inc-pay-2", "user_id": "U_MALLORY"},
        )
        with serve(app):
            deadline = time.monotonic() + 30
            while len(slack.socket_acks) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
    acks = {a["envelope_id"]: a.get("payload") or {} for a in slack.socket_acks}
    assert "accepted" in acks[click]["text"]
    assert "not authorised" in acks[slash]["text"], "an outsider is refused over the socket too"
    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.actor, c.incident_id) for c in commands] == [
        ("ack", "U_CAROL", "inc-pay-2")
    ]
