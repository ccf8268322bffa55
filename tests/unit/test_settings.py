from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from streams.catalog import Catalog
from streams.kafka_security import (
    describe,
    faust_credentials,
    faust_options,
    ssl_context,
)
from streams.settings import KafkaSettings


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_BOOTSTRAP_SERVERS", "kafka-0:9093,kafka-1:9093")
    monkeypatch.setenv("TOCSIN_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("TOCSIN_PARTITIONS", "12")
    s = KafkaSettings()
    assert s.client_config()["bootstrap.servers"] == "kafka-0:9093,kafka-1:9093"
    assert Catalog(s).get("metrics").name == "prod.metrics"
    assert Catalog(s).get("metrics").partitions == 12


def test_settings_are_frozen() -> None:
    s = KafkaSettings()
    with pytest.raises(ValidationError):
        s.partitions = 3  # type: ignore[misc]


def test_sasl_requires_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="TOCSIN_SASL_MECHANISM"):
        KafkaSettings()


def test_sasl_password_from_file_is_used_but_never_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    monkeypatch.setenv("TOCSIN_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TOCSIN_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TOCSIN_SASL_USERNAME", "tocsin")
    monkeypatch.setenv("TOCSIN_SASL_PASSWORD_FILE", str(secret))
    s = KafkaSettings()
    assert s.client_config()["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        KafkaSettings()


@pytest.mark.parametrize(
    ("replicas", "explicit", "need"),
    [(1, None, 1), (2, None, 1), (3, None, 2), (5, None, 2), (3, 3, 3), (5, 1, 1)],
)
def test_a_write_needs_two_copies_once_there_are_three(replicas: int, explicit: int | None,
                                                        need: int) -> None:  # fmt: skip
    settings = KafkaSettings(replication_factor=replicas, min_insync_replicas=explicit)
    assert settings.min_insync == need
    # on every topic created: the catalog's and the agents' changelogs
    catalog = Catalog(settings)
    assert {t.configs()["min.insync.replicas"] for t in catalog} == {str(need)}
    assert catalog.changelog_configs() == {"min.insync.replicas": str(need)}
    # and a worker started as a child process is told the same
    child = {k.removeprefix("TOCSIN_").lower(): v for k, v in settings.environment().items()}
    assert KafkaSettings.model_validate(child).min_insync == need


def test_more_copies_required_than_kept_is_refused() -> None:
    with pytest.raises(ValidationError, match="TOCSIN_MIN_INSYNC_REPLICAS=3 is more than"):
        KafkaSettings(replication_factor=2, min_insync_replicas=3)


def test_catalog_declares_every_topic_of_the_brief() -> None:
    names = {t.spec.name for t in Catalog(KafkaSettings())}
    assert {
        "metrics",
        "logs",
        "alerts",
        "commands",
        "incidents",
        "incident-events",
        "notifications",
        "receipts",
        "deadletter",
        "late",
    } <= names
    assert Catalog(KafkaSettings()).get("incidents").spec.cleanup_policy == "compact"


# -- the funnel: one settings object for librdkafka and faust/aiokafka ------------------


def _tls_files(tmp_path: Path) -> Any:
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificates")
    from streams.broker.secure import ensure_tls

    return ensure_tls(tmp_path / "tls")


def _aiokafka(settings: KafkaSettings) -> dict[str, Any]:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(faust_credentials(settings)))


def test_plaintext_gives_faust_the_brokers_and_no_credentials() -> None:
    s = KafkaSettings(bootstrap_servers="k0:9092,k1:9092", client_id="me")
    assert faust_options(s) == {"broker": ["kafka://k0:9092", "kafka://k1:9092"],
                                "broker_credentials": None, "broker_client_id": "me"}  # fmt: skip
    assert _aiokafka(s) == {"security_protocol": "PLAINTEXT"}
    assert ssl_context(s) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_reaches_faust_as_librdkafka(mechanism: str, tmp_path: Path) -> None:
    tls = _tls_files(tmp_path)
    s = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                      sasl_username="tocsin", sasl_password="hunter2",
                      ssl_ca_location=str(tls.ca))  # type: ignore[arg-type]  # fmt: skip
    rd = s.client_config()
    aio = _aiokafka(s)
    assert aio["security_protocol"] == rd["security.protocol"] == "SASL_SSL"
    assert aio["sasl_mechanism"] == rd["sasl.mechanism"] == mechanism
    assert aio["sasl_plain_username"] == rd["sasl.username"] == "tocsin"
    assert aio["sasl_plain_password"] == rd["sasl.password"] == "hunter2"
    context = aio["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # the context trusts exactly the configured CA, not only the system store
    assert any("tocsin local CA" in str(c.get("subject")) for c in context.get_ca_certs())


def test_sasl_plaintext_has_no_tls(tmp_path: Path) -> None:
    s = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                      sasl_username="tocsin", sasl_password="pw")  # type: ignore[arg-type]  # fmt: skip
    aio = _aiokafka(s)
    assert aio["security_protocol"] == "SASL_PLAINTEXT" and aio["ssl_context"] is None
    assert aio["sasl_mechanism"] == "SCRAM-SHA-512"


def test_ssl_with_a_client_certificate_loads_it(tmp_path: Path) -> None:
    tls = _tls_files(tmp_path)
    s = KafkaSettings(security_protocol="SSL", ssl_ca_location=str(tls.ca),
                      ssl_certificate_location=str(tls.client_cert),
                      ssl_key_location=str(tls.client_key))  # fmt: skip
    aio = _aiokafka(s)
    assert aio["security_protocol"] == "SSL"
    assert isinstance(aio["ssl_context"], ssl.SSLContext)
    assert s.client_config()["ssl.certificate.location"] == str(tls.client_cert)
    # a key that does not match the certificate is refused when the worker starts
    bad = s.model_copy(update={"ssl_key_location": str(tls.ca)})
    with pytest.raises(ssl.SSLError):
        ssl_context(bad)


def test_tls_settings_with_a_plaintext_protocol_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not use TLS"):
        KafkaSettings(ssl_ca_location="/ca.pem")
    with pytest.raises(ValidationError, match="does not authenticate with SASL"):
        KafkaSettings(security_protocol="SSL", sasl_mechanism="PLAIN")
    with pytest.raises(ValidationError, match="TOCSIN_SSL_KEY_LOCATION"):
        KafkaSettings(security_protocol="SSL", ssl_certificate_location="/c.pem")


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key-password").write_text("k3y-secret\n")
    monkeypatch.setenv("TOCSIN_SSL_KEY_PASSWORD_FILE", str(tmp_path / "key-password"))
    s = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                      sasl_username="tocsin", sasl_password="hunter2")  # type: ignore[arg-type]  # fmt: skip
    assert s.client_config()["ssl.key.password"] == "k3y-secret"
    creds = faust_credentials(s)
    for text in (repr(s), str(s), repr(creds), str(creds), describe(s),
                 str(faust_options(s))):  # fmt: skip
        assert "hunter2" not in text and "k3y-secret" not in text, text
    assert "SASL_PLAINTEXT" in describe(s) and "PLAIN" in describe(s)


def test_environment_hands_a_child_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = KafkaSettings(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                      sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p",
                      ssl_ca_location="/ca.pem", topic_prefix="x.", partitions=3)  # type: ignore[arg-type]  # fmt: skip
    for key, value in s.environment().items():
        monkeypatch.setenv(key, value)
    assert KafkaSettings() == s
    assert KafkaSettings().client_config() == s.client_config()
