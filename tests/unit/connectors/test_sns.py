"""SNS signatures (versions 1 and 2) against a locally generated certificate, the AWS
hosts a certificate or confirmation may come from, the certificate cache, and
CloudWatch alarms as alerts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.sources.cloudwatch import decode_alarm, example_alarm
from connectors.sources.sns import (
    SnsError,
    SnsMessage,
    SnsVerifier,
    check_subscribe_url,
    string_to_sign,
)
from schemas import DecodeError
from tests.fakes.sns import CERT_URL, REGION, TOPIC, FakeSns, make_certificate

NOW = datetime(2026, 1, 1, 0, 6, tzinfo=UTC)


def _verify(fake: FakeSns, doc: dict[str, Any], verifier: SnsVerifier | None = None) -> None:
    asyncio.run((verifier or SnsVerifier(fake.fetch)).verify(SnsMessage.model_validate(doc)))


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_verifies_and_any_change_to_a_signed_field_does_not(
    version: str,
) -> None:
    fake = FakeSns()
    doc = fake.notification(example_alarm(), version=version)
    _verify(fake, doc)
    for name, value in (("Message", doc["Message"] + " "), ("Subject", "OK: fine"),
                        ("Timestamp", "2026-01-01T00:00:00.000Z"), ("Type", "Notification "),
                        ("MessageId", "another")):  # fmt: skip
        if name == "Type":
            continue  # not a valid type at all: the model refuses it before any signature
        with pytest.raises(SnsError, match="does not verify") as err:
            _verify(fake, doc | {name: value})
        assert err.value.status == 403


def test_without_a_subject_the_string_to_sign_skips_it_and_still_verifies() -> None:
    fake = FakeSns()
    doc = fake.notification(example_alarm(), subject=None)
    assert b"Subject" not in string_to_sign(SnsMessage.model_validate(doc))
    _verify(fake, doc)


def test_a_message_signed_by_another_key_is_forged() -> None:
    fake = FakeSns()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = fake.sign({k: v for k, v in fake.notification("x").items()}, key=other)
    with pytest.raises(SnsError, match="does not verify"):
        _verify(fake, forged)


def test_confirmations_sign_subscribe_url_and_token_in_aws_order() -> None:
    fake = FakeSns()
    doc = fake.confirmation()
    text = string_to_sign(SnsMessage.model_validate(doc)).decode()
    names = [line for i, line in enumerate(text.split("\n")[:-1]) if i % 2 == 0]
    assert names == ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                     "Type"]  # fmt: skip
    _verify(fake, doc)
    with pytest.raises(SnsError, match="does not verify"):
        _verify(fake, doc | {"Token": "another"})


@pytest.mark.parametrize(
    "url",
    [
        CERT_URL.replace("https://", "http://"),
        CERT_URL.replace("amazonaws.com", "amazonaws.com.evil.example"),
        CERT_URL.replace(f"sns.{REGION}.amazonaws.com", "evil.example"),
        CERT_URL.replace(f"sns.{REGION}", "s3.eu-west-1"),
        CERT_URL.replace(f"sns.{REGION}", "sns.us-east-1"),  # not the topic's region
        CERT_URL.replace("https://", "https://user:pw@"),
        CERT_URL.replace(".amazonaws.com/", ".amazonaws.com:8443/"),
        CERT_URL.replace(".pem", ".pem?x=1"),
        f"https://sns.{REGION}.amazonaws.com/attacker-upload.pem",
    ],
)
def test_a_certificate_from_anywhere_but_an_sns_endpoint_is_refused_unfetched(url: str) -> None:
    fake = FakeSns()
    fake.certs[url] = fake.certs[CERT_URL]  # even were it served there
    doc = fake.notification("x", cert_url=url)
    with pytest.raises(SnsError) as err:
        _verify(fake, doc)
    assert err.value.status == 403 and "SigningCertURL" in str(err.value)
    assert fake.fetched == []


def test_china_partition_hosts_are_sns_endpoints() -> None:
    fake = FakeSns()
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:alarms"
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123456789abcdef.pem"
    fake.certs[url] = fake.certs[CERT_URL]
    _verify(fake, fake.notification("x", topic=topic, cert_url=url))


def test_certificates_are_fetched_once_and_the_cache_is_bounded() -> None:
    fake = FakeSns()
    urls = [CERT_URL.replace("0123456789abcdef0123456789abcdef", f"{i:032x}") for i in range(4)]
    for url in urls:
        fake.certs[url] = fake.certs[CERT_URL]
    verifier = SnsVerifier(fake.fetch, max_certs=2)

    async def run() -> None:
        docs = [fake.notification(f"m{i}") for i in range(20)]
        await asyncio.gather(*(verifier.verify(SnsMessage.model_validate(d)) for d in docs))
        assert verifier.fetches == 1, "concurrent messages share one fetch"
        for url in urls:
            await verifier.verify(SnsMessage.model_validate(fake.notification("m", cert_url=url)))
        assert len(verifier._keys) == 2

    asyncio.run(run())


def test_an_expired_certificate_is_refused() -> None:
    fake = FakeSns()
    fake.certs[CERT_URL] = make_certificate(fake.key, days=-1)
    with pytest.raises(SnsError, match="not valid now"):
        _verify(fake, fake.notification("x"))


def test_subscribe_url_must_confirm_this_topic_on_an_sns_endpoint() -> None:
    fake = FakeSns()
    good = SnsMessage.model_validate(fake.confirmation())
    assert check_subscribe_url(good).startswith(f"https://sns.{REGION}.amazonaws.com/")
    host = f"sns.{REGION}.amazonaws.com"
    for url in ("https://evil.example/?Action=ConfirmSubscription&TopicArn=" + TOPIC,
                f"http://{host}/?Action=ConfirmSubscription&TopicArn={TOPIC}",
                f"https://{host}/?Action=Publish&TopicArn={TOPIC}",
                f"https://{host}/?Action=ConfirmSubscription&TopicArn=x"):  # fmt: skip
        with pytest.raises(SnsError, match="SubscribeURL"):
            check_subscribe_url(SnsMessage.model_validate(fake.confirmation(subscribe_url=url)))


@pytest.mark.parametrize(
    ("state", "status"), [("ALARM", "firing"), ("OK", "resolved"), ("INSUFFICIENT_DATA", "firing")]
)
def test_cloudwatch_states_become_alert_transitions_of_one_alert(state: str, status: str) -> None:
    alert = decode_alarm(orjson.dumps(example_alarm(state)), "mid-1", NOW)
    assert alert.status == status and alert.source == "cloudwatch"
    assert alert.annotations["cloudwatch_state"] == state
    assert alert.labels["alertname"] == "checkout-5xx-high"
    assert alert.labels["region"] == "eu-west-1" and alert.labels["metric"] == (
        "HTTPCode_Target_5XX_Count")  # fmt: skip
    assert alert.labels["dimension_LoadBalancer"] == "app/checkout/50dc6c495c0c9188"
    assert alert.threshold == 10.0 and alert.value == 42.0
    assert alert.severity == "critical", "severity=critical in the alarm's description"
    assert "checkout-5xx-high" in alert.annotations["console_url"]
    others = [decode_alarm(orjson.dumps(example_alarm(s)), "m", NOW)
              for s in ("ALARM", "OK", "INSUFFICIENT_DATA")]  # fmt: skip
    assert {a.fingerprint for a in others} == {alert.fingerprint}
    label_sets = {tuple(sorted(a.labels.items())) for a in others}
    assert len(label_sets) == 1, "a state change never moves the alert's group"


def test_the_event_id_is_the_sns_message_id_so_a_redelivery_is_the_same_event() -> None:
    body = orjson.dumps(example_alarm())
    assert decode_alarm(body, "m1", NOW).event_id == decode_alarm(body, "m1", NOW).event_id
    assert decode_alarm(body, "m1", NOW).event_id != decode_alarm(body, "m2", NOW).event_id


def test_a_composite_alarm_without_a_metric_is_still_an_alert() -> None:
    doc = example_alarm()
    del doc["Trigger"]
    doc["AlarmRule"] = 'ALARM("cpu") AND ALARM("errors")'
    alert = decode_alarm(orjson.dumps(doc), "m", NOW)
    assert alert.threshold is None and alert.annotations["alarm_rule"].startswith("ALARM(")


@pytest.mark.parametrize(
    ("change", "field"),
    [({"NewStateValue": "PANIC"}, "NewStateValue"), ({"AlarmName": ""}, "AlarmName"),
     ({"StateChangeTime": "yesterday"}, "StateChangeTime")],
)  # fmt: skip
def test_an_unmappable_alarm_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DecodeError, match=f"CloudWatchAlarm.{field}"):
        decode_alarm(orjson.dumps(example_alarm() | change), "m", NOW)
    with pytest.raises(DecodeError, match="CloudWatchAlarm"):
        decode_alarm("plain text someone published", "m", NOW)


def test_topic_patterns_match_within_one_part_of_the_arn() -> None:
    from streams.gateway.sns import SnsIntake

    intake = SnsIntake.from_env(f" {TOPIC} , arn:aws:sns:*:222222222222:alarms-* ")
    intake.fetch = FakeSns().fetch
    assert intake.allows(TOPIC)
    assert intake.allows("arn:aws:sns:us-east-1:222222222222:alarms-prod")
    assert not intake.allows("arn:aws:sns:us-east-1:222222222222:other")
    assert not intake.allows("arn:aws:sns:us-east-1:333333333333:x:222222222222:alarms-x")
    assert not intake.allows(TOPIC + "-2")
    assert not SnsIntake.from_env("").allows(TOPIC), "no topics configured: none accepted"
