from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.catalog import Catalog
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
