"""/v1/sns on the real broker: a subscription confirmed, CloudWatch alarms in Kafka,
forged, unsigned, foreign and stale messages refused with nothing written; then
hypothesis mutating signed messages: never a 5xx."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.faults.harness import free_port, kill9, start_gateway, wait_healthy
from connectors.sources.cloudwatch import example_alarm
from schemas import Alert, DeadLetter, decode
from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.gateway.sns import SnsIntake
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.fakes.sns import CERT_URL, TOPIC, FakeSns
from tests.integration.connectors.support import SIGNING, TOKEN, make_gateway, read_values, serve

HEADERS = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}


@pytest.fixture
def fake() -> FakeSns:
    return FakeSns()


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog, fake: FakeSns) -> Iterator[httpx.Client]:
    intake = SnsIntake(frozenset({TOPIC}), fetch=fake.fetch)
    with (serve(make_gateway(kafka_settings, sns_intake=intake).app()) as url,
          httpx.Client(base_url=url, timeout=30) as client):  # fmt: skip
        yield client


def _post(gw: httpx.Client, doc: dict[str, Any], kind: str = "Notification") -> httpx.Response:
    return gw.post("/v1/sns", content=orjson.dumps(doc),
                   headers=HEADERS | {"x-amz-sns-message-type": kind})  # fmt: skip


def _alerts(settings: KafkaSettings, topics: Catalog) -> list[Alert]:
    return [decode(Alert, v) for v in read_values(settings, topics.name("alerts"))]


def test_subscription_is_confirmed_by_fetching_its_subscribe_url(
    gw: httpx.Client, fake: FakeSns
) -> None:
    doc = fake.confirmation()
    resp = _post(gw, doc, "SubscriptionConfirmation")
    assert resp.status_code == 200 and resp.json() == {"confirmed": TOPIC}
    assert fake.fetched == [CERT_URL, doc["SubscribeURL"]]
    evil = fake.confirmation(subscribe_url="https://evil.example/?Action=ConfirmSubscription"
                                           f"&TopicArn={TOPIC}")  # fmt: skip
    refused = _post(gw, evil, "SubscriptionConfirmation")
    assert refused.status_code == 403 and "SubscribeURL" in refused.json()["error"]
    assert not any("evil" in u for u in fake.fetched), "never fetched"
    bye = _post(gw, fake.confirmation(kind="UnsubscribeConfirmation"), "UnsubscribeConfirmation")
    assert bye.status_code == 200 and len(fake.fetched) == 2, "an unsubscribe fetches nothing"


def test_cloudwatch_alarm_and_ok_become_one_alert_firing_then_resolved(
    gw: httpx.Client, fake: FakeSns, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    alarm = fake.notification(example_alarm("ALARM"), version="1")
    assert _post(gw, alarm).status_code == 200
    assert _post(gw, alarm).status_code == 200, "SNS delivers again: the same event"
    assert _post(gw, fake.notification(example_alarm("OK"))).status_code == 200
    stored = _alerts(kafka_settings, topics)
    assert [a.status for a in stored] == ["firing", "firing", "resolved"]
    assert stored[0].event_id == stored[1].event_id != stored[2].event_id
    assert len({a.fingerprint for a in stored}) == 1
    assert stored[0].labels["alertname"] == "checkout-5xx-high"
    assert stored[0].threshold == 10.0 and stored[0].severity == "critical"
    assert fake.fetched == [CERT_URL], "the certificate is fetched once"


def test_forged_unsigned_foreign_and_stale_messages_are_refused_and_nothing_is_written(
    gw: httpx.Client, fake: FakeSns, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = fake.notification(example_alarm())
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    cases = {
        "forged": (fake.sign(good, key=other), 403, "does not verify"),
        "tampered": (good | {"Message": orjson.dumps(example_alarm("OK")).decode()}, 403,
                     "does not verify"),
        "unsigned": (unsigned, 400, "SnsMessage.Signature"),
        "http certificate": (fake.notification("x", cert_url=CERT_URL.replace("https", "http")),
                             403, "SigningCertURL"),
        "foreign host": (fake.notification(
            "x", cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/"
                          "SimpleNotificationService-0123456789abcdef.pem"), 403, "SigningCertURL"),
        "foreign topic": (fake.notification(
            example_alarm(), topic="arn:aws:sns:eu-west-1:999999999999:theirs"), 403,
            "not a topic this gateway accepts"),
        "stale": (fake.notification(example_alarm(),
                                    at=datetime.now(UTC) - timedelta(hours=3)), 400,
                  "SnsMessage.Timestamp"),
        "not json": (None, 400, "SnsMessage"),
    }  # fmt: skip
    for what, (doc, status, words) in cases.items():
        body = orjson.dumps(doc) if doc is not None else b"Type=Notification"
        resp = gw.post("/v1/sns", content=body, headers=HEADERS)
        assert resp.status_code == status, (what, resp.text)
        assert words in resp.json()["error"], (what, resp.text)
    assert _alerts(kafka_settings, topics) == []
    assert read_values(kafka_settings, topics.name("deadletter")) == [], (
        "an unauthenticated body is never written, not even as a dead letter")  # fmt: skip


def test_a_signed_message_that_is_not_an_alarm_is_dead_lettered_with_the_field(
    gw: httpx.Client, fake: FakeSns, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    resp = _post(gw, fake.notification(example_alarm() | {"NewStateValue": "PANIC"}))
    assert resp.status_code == 400
    assert "SnsMessage.Message: CloudWatchAlarm.NewStateValue" in resp.json()["error"]
    [letter] = [decode(DeadLetter, v) for v in read_values(kafka_settings,
                                                           topics.name("deadletter"))]  # fmt: skip
    assert letter.source_topic == "http:/v1/sns" and b"PANIC" in letter.value
    assert _alerts(kafka_settings, topics) == []


@pytest.fixture(scope="module")
def fuzz_gateway(broker: str) -> Iterator[tuple[httpx.Client, FakeSns]]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"sns{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    fake = FakeSns()
    intake = SnsIntake(frozenset({TOPIC}), fetch=fake.fetch)
    with (serve(make_gateway(s, sns_intake=intake).app()) as url,
          httpx.Client(base_url=url, timeout=60) as client):  # fmt: skip
        yield client, fake
    delete_prefixed(make_admin(s), s.topic_prefix)


_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_VALUES = st.one_of(st.none(), _INT64, st.floats(), st.text(max_size=80),
                    st.lists(_INT64, max_size=3),
                    st.dictionaries(st.text(max_size=5), _INT64, max_size=3))  # fmt: skip
_FIELDS = ["Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
           "Signature", "SigningCertURL", "Subject", "SubscribeURL", "Token"]  # fmt: skip
_ALARM_FIELDS = list(example_alarm())


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["Notification", "SubscriptionConfirmation", "raw"]),
    envelope=st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=3),
    alarm=st.dictionaries(st.sampled_from(_ALARM_FIELDS), _VALUES, max_size=3),
    resign=st.booleans(),
    raw=st.binary(max_size=300),
)
def test_fuzz_signed_and_mutated_messages_never_answer_a_server_error(
    fuzz_gateway: tuple[httpx.Client, FakeSns], kind: str, envelope: dict[str, Any],
    alarm: dict[str, Any], resign: bool, raw: bytes,
) -> None:  # fmt: skip
    client, fake = fuzz_gateway
    if kind == "raw":
        body = raw
    else:
        base = (fake.notification(example_alarm() | alarm) if kind == "Notification"
                else fake.confirmation())  # fmt: skip
        doc = base | envelope
        if resign:
            # a mutation the model refuses cannot be signed: it goes as it is
            with contextlib.suppress(Exception):
                doc = fake.sign(doc)
        body = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    resp = client.post("/v1/sns", content=body, headers=HEADERS)
    assert resp.status_code < 500, resp.text[:300]
    assert resp.status_code in (200, 400, 403, 413), resp.text[:300]


def test_the_gateway_process_takes_its_topics_from_the_environment(
    kafka_settings: KafkaSettings, topics: Catalog, fake: FakeSns, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    proc = start_gateway(kafka_settings, log, port, TOKEN, SIGNING,
                         TOCSIN_SNS_TOPIC_ARNS="arn:aws:sns:*:123456789012:tocsin-*")  # fmt: skip
    try:
        wait_healthy(url, proc, log)
        with httpx.Client(base_url=url, timeout=30) as client:
            foreign = _post(client, fake.notification(
                example_alarm(), topic="arn:aws:sns:eu-west-1:999999999999:tocsin-x"))  # fmt: skip
            assert foreign.status_code == 403, foreign.text
            assert "TOCSIN_SNS_TOPIC_ARNS" in foreign.json()["error"]
            # an accepted topic goes on to its certificate, refused here before any fetch
            elsewhere = _post(
                client,
                fake.notification(
                    example_alarm(), cert_url="https://example.com/SimpleNotificationService-0a.pem"
                ),
            )
            assert elsewhere.status_code == 403 and "SigningCertURL" in elsewhere.text
    finally:
        kill9(proc)


def test_a_tenants_topic_writes_the_tenants_alarms(
    kafka_settings: KafkaSettings, topics: Catalog, fake: FakeSns
) -> None:
    from schemas.config import Config

    acme = Config.model_validate({"tenant": "acme", "intake": {"sns_topics": [
        TOPIC.rsplit(":", 1)[0] + ":*"]}})  # fmt: skip
    other = TOPIC.replace("123456789012", "999999999999")
    intake = SnsIntake(frozenset({other}), fetch=fake.fetch)
    gateway = make_gateway(kafka_settings, sns_intake=intake, tenants={"acme": acme})
    with serve(gateway.app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert _post(client, fake.notification(example_alarm("ALARM"))).status_code == 200
        ours = _post(client, fake.notification(example_alarm("ALARM"), topic=other))
        assert ours.status_code == 200, "the environment's topics are the provider's"
        foreign = TOPIC.replace("123456789012", "555555555555")
        refused = _post(client, fake.notification(example_alarm("ALARM"), topic=foreign))
        assert refused.status_code == 403 and "intake.sns_topics" in refused.json()["error"]
    assert sorted(a.tenant for a in _alerts(kafka_settings, topics)) == ["acme", "default"]
