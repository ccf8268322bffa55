"""`/incident update` through the gateway on the real broker: a status-page update on
`commands` for the projector, authorised by the incident's team; an update for a resolved
incident or for an unknown audience is refused and nothing is written."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.slack.signature import SignatureVerifier
from schemas import Command, Incident, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import SIGNING, make_gateway, read_values, serve

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[httpx.Client]:
    with (
        serve(make_gateway(kafka_settings).app()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def _slash(gw: httpx.Client, text: str, user: str = "U_CAROL") -> str:
    # Slack's trigger_id differs per request: the gateway refuses a signed body twice
    body = urllib.parse.urlencode({"text": text, "user_id": user,
                                   "trigger_id": uuid.uuid4().hex}).encode()  # fmt: skip
    stamp = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": SignatureVerifier(SIGNING).sign(stamp, body),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    r = gw.post("/slack/commands", content=body, headers=headers)
    assert r.status_code == 200
    text_: str = r.json()["text"]
    return text_


def _incident(iid: str, status: str) -> Incident:
    return Incident(incident_id=iid, group_key=iid, version=1, status=status, title="t",
                    severity="critical", priority="P1", team="payments", opened_at=T0,
                    resolved_at=T0 if status == "resolved" else None)  # type: ignore[arg-type]  # fmt: skip


def _wait_known(gw: httpx.Client, iid: str) -> None:
    deadline = time.monotonic() + 60
    while "no incident" in _slash(gw, f"who {iid}", "U_SRE").lower():
        assert time.monotonic() < deadline, f"the gateway never learnt of {iid}"
        time.sleep(0.2)


def test_slash_update_posts_a_status_update_for_the_chosen_audiences(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    p = make_producer(kafka_settings)
    for inc in (_incident("inc-pay-1", "triggered"), _incident("inc-pay-2", "resolved")):
        p.produce(topics.name("incidents"), key=inc.incident_id.encode(), value=encode(inc))
    assert p.flush(10) == 0
    _wait_known(gw, "inc-pay-1")
    _wait_known(gw, "inc-pay-2")

    said = _slash(gw, "update identified to:public,private failing over the database inc-pay-1")
    assert "accepted" in said and "public, private" in said
    said = _slash(gw, "update monitoring looks stable inc-pay-1")
    assert "accepted" in said and "private, internal" in said
    assert "resolved" in _slash(gw, "update monitoring too late inc-pay-2")
    assert "audiences" in _slash(gw, "update identified to:everyone x inc-pay-1")
    assert "not one of" in _slash(gw, "update fixing x inc-pay-1")
    assert "not a member" in _slash(gw, "update identified x inc-pay-1", user="U_ALICE")

    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    updates = [c.status.update for c in commands if c.status and c.status.update]
    assert [(u.incident_id, u.status, u.message, u.audiences, u.author) for u in updates] == [
        ("inc-pay-1", "identified", "failing over the database", ["public", "private"],
         "U_CAROL"),
        ("inc-pay-1", "monitoring", "looks stable", ["private", "internal"], "U_CAROL"),
    ]  # fmt: skip
