"""The gateway on the real broker: every endpoint with valid and invalid input, auth,
and the promise that a record acknowledged to the client is in Kafka."""

from __future__ import annotations

import gzip
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from connectors.slack.signature import SignatureVerifier
from connectors.sources.alertmanager import example_payload
from connectors.sources.remote_write import encode_remote_write
from schemas import Alert, Command, DeadLetter, Incident, MetricSample, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import (
    AUTH,
    RECENT,
    SIGNING,
    STAMP,
    make_gateway,
    read_keyed,
    read_values,
    serve,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[httpx.Client]:
    with (
        serve(make_gateway(kafka_settings).app()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def _sample(i: int) -> dict[str, object]:
    return {
        "name": "http_requests",
        "value": float(i),
        "time": STAMP,
        "labels": {"host": f"web-{i % 5}"},
    }


def test_metrics_ndjson_gzip_acknowledged_records_are_in_kafka(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    body = b"\n".join(orjson.dumps(_sample(i)) for i in range(300))
    resp = gw.post(
        "/v1/metrics",
        content=gzip.compress(body),
        headers={**AUTH, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert resp.status_code == 202 and resp.json() == {"accepted": 300}
    stored = read_keyed(kafka_settings, topics.name("metrics"))
    values = sorted(decode(MetricSample, v).value for _, v in stored)
    assert values == [float(i) for i in range(300)]
    assert {k for k, _ in stored} == {f"http_requests{{host=web-{i}}}".encode() for i in range(5)}


def test_bearer_token_is_required(gw: httpx.Client) -> None:
    body = orjson.dumps(_sample(1))
    for path in ("/v1/metrics", "/v1/logs", "/v1/alertmanager", "/api/v1/write"):
        assert gw.post(path, content=body).status_code == 401
        bad = gw.post(path, content=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"


def test_invalid_items_get_position_and_field_and_go_to_deadletter(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    bad_line = b'{"name": "cpu", "value": "high", "time": "%s"}' % STAMP.encode()
    body = orjson.dumps(_sample(1)) + b"\n" + bad_line
    resp = gw.post(
        "/v1/metrics", content=body, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert resp.status_code == 400
    doc = resp.json()
    assert doc["accepted"] == 1 and doc["errors"][0]["position"] == 1
    assert "MetricSample.value" in doc["errors"][0]["error"]
    logs = gw.post("/v1/logs", content=b"not json at all", headers=AUTH)
    assert logs.status_code == 400 and "not JSON" in logs.json()["error"]
    letters = [
        decode(DeadLetter, v) for v in read_values(kafka_settings, topics.name("deadletter"))
    ]
    # one dead letter per request: its whole body, and the errors by position
    assert {bytes(d.value or b"") for d in letters} == {body, b"not json at all"}
    assert any("item 1: MetricSample.value" in d.error for d in letters)


def test_alertmanager_webhook_lands_on_alerts_by_fingerprint(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    resp = gw.post("/v1/alertmanager", content=example_payload(), headers=AUTH)
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    [(key, value)] = read_keyed(kafka_settings, topics.name("alerts"))
    assert key == b"c0ffee0000000001" and decode(Alert, value).source == "alertmanager"
    broken = gw.post(
        "/v1/alertmanager", content=b'{"version":"4","alerts":[{"labels":{}}]}', headers=AUTH
    )
    assert broken.status_code == 400 and "startsAt" in broken.json()["error"]


def test_pagerduty_intake_answers_like_pagerduty(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    event = {
        "routing_key": "RKEY",
        "event_action": "trigger",
        "dedup_key": "disk-db-1",
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    ok = gw.post("/v2/enqueue", json=event)
    assert ok.status_code == 202
    assert ok.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "disk-db-1",
    }
    wrong_key = gw.post("/v2/enqueue", json={**event, "routing_key": "OTHER"})
    assert wrong_key.status_code == 400 and wrong_key.json()["status"] == "invalid event"
    invalid = gw.post("/v2/enqueue", json={**event, "event_action": "explode"})
    assert invalid.status_code == 400
    assert any("event_action" in e for e in invalid.json()["errors"])
    [(key, _)] = read_keyed(kafka_settings, topics.name("alerts"))
    assert key == b"disk-db-1"


def test_prometheus_remote_write(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    millis = int(RECENT.timestamp() * 1000)
    body = encode_remote_write(
        [
            ({"__name__": "up", "job": "node", "instance": f"n{i}"}, [(1.0, millis)])
            for i in range(20)
        ]
    )
    resp = gw.post(
        "/api/v1/write",
        content=body,
        headers={**AUTH, "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
    )
    assert resp.status_code == 204
    assert len(read_values(kafka_settings, topics.name("metrics"))) == 20
    assert gw.post("/api/v1/write", content=b"garbage", headers=AUTH).status_code == 400


def _signed(body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING).sign(stamp, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _click(user: str, action: str = "tocsin_ack") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action, "value": "inc-pay-1"}],
    }
    return urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def test_slack_buttons_and_slash_command_authorized_by_team(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    incident = Incident(
        incident_id="inc-pay-1",
        group_key="g",
        version=1,
        status="triggered",
        title="Checkout errors",
        severity="critical",
        priority="P1",
        team="payments",
        opened_at=T0,
    )
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("incidents"), key=b"inc-pay-1", value=encode(incident))
    assert producer.flush(10) == 0

    body = _click("U_CAROL")
    headers = _signed(body)
    ok = gw.post("/slack/interactions", content=body, headers=headers)
    assert ok.status_code == 200 and "accepted" in ok.json()["text"]
    assert ok.json()["response_type"] == "ephemeral"
    replay = gw.post("/slack/interactions", content=body, headers=headers)
    assert replay.status_code == 401, "the same signed body is accepted once"

    other_team = _click("U_ALICE")
    refused = gw.post("/slack/interactions", content=other_team, headers=_signed(other_team))
    assert refused.status_code == 200 and "not a member" in refused.json()["text"]
    stranger = _click("U_MALLORY")
    unknown = gw.post("/slack/interactions", content=stranger, headers=_signed(stranger))
    assert unknown.status_code == 200 and "not authorised" in unknown.json()["text"]
    wrong = gw.post(
        "/slack/interactions",
        content=_click("U_CAROL", "tocsin_resolve"),
        headers=_signed(b"something else"),
    )
    assert wrong.status_code == 401
    stale_body = _click("U_SRE")
    stale = gw.post(
        "/slack/interactions",
        content=stale_body,
        headers=_signed(stale_body, int(time.time()) - 600),
    )
    assert stale.status_code == 401

    slash = urllib.parse.urlencode({"text": "snooze 30m inc-pay-1", "user_id": "U_SRE"}).encode()
    snoozed = gw.post("/slack/commands", content=slash, headers=_signed(slash))
    assert "accepted" in snoozed.json()["text"]
    listing = urllib.parse.urlencode({"text": "list", "user_id": "U_SRE"}).encode()
    listed = gw.post("/slack/commands", content=listing, headers=_signed(listing))
    assert "inc-pay-1" in listed.json()["text"]

    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert sorted((c.action, c.actor) for c in commands) == [
        ("ack", "U_CAROL"),
        ("snooze", "U_SRE"),
    ]


def test_health_readiness_and_metrics(gw: httpx.Client) -> None:
    assert gw.get("/healthz").status_code == 200
    deadline = time.monotonic() + 10
    while gw.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gw.get("/readyz").json()["ok"] is True
    gw.post("/v1/metrics", content=b"[]", headers=AUTH)
    assert 'tocsin_gateway_requests_total{code="202",route="metrics"}' in gw.get("/metrics").text
