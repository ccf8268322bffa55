"""The local broker's configuration: plain by default, secured only when asked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.broker.local import LocalBroker
from streams.broker.secure import BROKER_USER, BrokerSecurity, scram_arguments


def _props(broker: LocalBroker) -> dict[str, str]:
    broker._write_properties()
    lines = broker.properties.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_default_broker_stays_plain(tmp_path: Path) -> None:
    props = _props(LocalBroker(home=tmp_path, port=19792))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19792,CONTROLLER://127.0.0.1:19793"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert not any(k.startswith(("ssl.", "sasl.", "listener.name.")) for k in props)
    assert not (tmp_path / "tls-19792").exists()


def test_a_secured_broker_has_no_plain_client_listener(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the broker's certificates")
    security = BrokerSecurity(("SASL_SSL", "SSL"), {"tocsin": "pw-1"})
    broker = LocalBroker(home=tmp_path, port=19792, security=security)
    props = _props(broker)
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:19792,SSL://127.0.0.1:19794"
    assert "PLAINTEXT://" not in props["listeners"].replace("CONTROLLER://127.0.0.1:19793", "")
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert props["ssl.keystore.type"] == "PEM" and Path(props["ssl.keystore.location"]).exists()
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    # the JAAS entries hold passwords: only the owner may read the file and the keys
    assert broker.properties.stat().st_mode & 0o077 == 0
    assert (tmp_path / "tls-19792" / "broker.key").stat().st_mode & 0o077 == 0
    settings = broker.client_settings()
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_username == "tocsin"
    ssl_settings = broker.client_settings("SSL")
    assert ssl_settings.bootstrap_servers == "127.0.0.1:19794"
    assert ssl_settings.ssl_certificate_location and ssl_settings.ssl_key_location


def test_every_user_gets_both_scram_credentials() -> None:
    args = scram_arguments(BrokerSecurity(("SASL_PLAINTEXT",), {"tocsin": "pw-1"}), "b-pw")
    pairs = [args[i + 1] for i in range(0, len(args), 2)]
    assert "SCRAM-SHA-512=[name=tocsin,password=pw-1]" in pairs
    assert "SCRAM-SHA-256=[name=tocsin,password=pw-1]" in pairs
    assert f"SCRAM-SHA-512=[name={BROKER_USER},password=b-pw]" in pairs
    assert scram_arguments(BrokerSecurity(("SSL",)), "b-pw") == []


def test_a_password_that_would_break_the_jaas_config_is_refused(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the broker's certificates")
    broker = LocalBroker(home=tmp_path, port=19792,
                         security=BrokerSecurity(("SASL_SSL",), {"tocsin": 'a";b'}))  # fmt: skip
    with pytest.raises(ValueError, match="may not contain"):
        broker._write_properties()
