"""One frozen, validated settings object, read from the environment (TOCSIN_*).

Secrets (SASL password, tokens) are SecretStr so they never print; each can
also come from a mounted file via ``<NAME>_FILE`` (Kubernetes Secrets): a settings
source of pydantic-settings for the settings objects, `secret()` for the few
variables read outside them (Slack and pager credentials).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, get_args

import structlog
from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# where librdkafka logs (see `KafkaSettings.client_config`)
RDKAFKA_LOG = logging.getLogger("tocsin.rdkafka")
SOCKET_TIMEOUT_MS = 30_000

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def secret(name: str) -> str | None:
    """``NAME`` from the file named by ``NAME_FILE`` if one is named, else from the
    environment; never logged.

    A named file that is missing or empty counts as unset (the variable ``NAME`` is then
    not consulted: the file was chosen as the source). A Kubernetes Secret mounted as a
    volume leaves out the keys it does not hold, and an optional one may be absent
    whole, so an optional credential left unconfigured must not stop a worker; a worker
    that needs the credential says so by name when it finds it unset."""
    if not os.environ.get(f"{name}_FILE"):
        return os.environ.get(name)
    return secret_file(name)


def secret_file(name: str) -> str | None:
    """The content of the file named by ``NAME_FILE`` (None: not named, missing, empty).
    A path that cannot be read as a file (a directory: a broken mount) raises OSError."""
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        structlog.get_logger(__name__).info("secret_file_absent", name=name, path=path)
        return None
    return text or None


class SecretFiles(PydanticBaseSettingsSource):
    """A pydantic-settings source: every ``SecretStr`` field from the file named by its
    variable's ``_FILE`` twin (``TOCSIN_SASL_PASSWORD_FILE`` for ``sasl_password``),
    consulted after the arguments and the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        prefix = str(self.config.get("env_prefix", ""))
        return secret_file(f"{prefix}{field_name}".upper()), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if SecretStr not in get_args(field.annotation):
                continue
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class SecretFileSettings(BaseSettings):
    """Settings read from the arguments, then the environment, then each secret's file
    (``SecretFiles``): the base of every settings class that holds a secret."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFiles(settings_cls)


class KafkaSettings(SecretFileSettings):
    """How every tocsin process reaches Kafka and names its topics."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", frozen=True, extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    topic_prefix: str = Field(default="tocsin.", pattern=r"^[a-zA-Z0-9._\-]*$", max_length=100)
    partitions: int = Field(default=6, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=16)
    # how many replicas must hold a write before Kafka acknowledges it (acks=all); None:
    # 2 when there are 3 or more replicas, so one broker may be away and an acknowledged
    # record is still on two, else 1 (with 2 replicas, 2 would stop every write while
    # either broker restarts)
    min_insync_replicas: int | None = Field(default=None, ge=1, le=16)
    client_id: str = "tocsin"
    # a worker waiting on Kafka this long while a new client is served exits to be
    # restarted (streams/runtime/stuck.py); 0: never
    stuck_restart_s: float = Field(default=120.0, ge=0)

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                "TOCSIN_SECURITY_PROTOCOL=SASL_* needs TOCSIN_SASL_MECHANISM, "
                "TOCSIN_SASL_USERNAME and TOCSIN_SASL_PASSWORD (or TOCSIN_SASL_PASSWORD_FILE)"
            )
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        if not tls and (self.ssl_ca_location or self.ssl_certificate_location):
            # a CA or certificate set for a plain-text protocol means the protocol is wrong:
            # connecting without TLS would send everything, credentials too, in clear
            raise ValueError(
                f"TOCSIN_SSL_* is set but TOCSIN_SECURITY_PROTOCOL={self.security_protocol} "
                "does not use TLS: set SSL or SASL_SSL"
            )
        if self.sasl_mechanism and not self.security_protocol.startswith("SASL"):
            raise ValueError(
                f"TOCSIN_SASL_MECHANISM is set but TOCSIN_SECURITY_PROTOCOL="
                f"{self.security_protocol} does not authenticate with SASL: set SASL_SSL "
                "or SASL_PLAINTEXT"
            )
        if self.min_insync_replicas is not None and (
            self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"TOCSIN_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                f"TOCSIN_REPLICATION_FACTOR={self.replication_factor}: no write could be "
                "acknowledged"
            )
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            raise ValueError(
                "a client certificate needs both TOCSIN_SSL_CERTIFICATE_LOCATION and "
                "TOCSIN_SSL_KEY_LOCATION"
            )
        return self

    @property
    def min_insync(self) -> int:
        """The replicas a write needs before Kafka acknowledges it, on every topic tocsin
        creates (its own and the agents' changelogs)."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 2 if self.replication_factor >= 3 else 1

    def client_config(self) -> dict[str, Any]:
        """librdkafka configuration shared by producers, consumers and the admin client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
            # librdkafka's own lines (a broker away, a failed connect) through Python's
            # logging, hence the workers' JSON log and its rate limit, not raw stderr;
            # served from each client's poll, which every worker loop calls
            "logger": RDKAFKA_LOG,
            # a node that hangs (frozen, cut off) answers nothing: a request to it is given
            # up and sent again to the partition's new leader after this long, as Java's
            # clients do, not after librdkafka's longer default
            "socket.timeout.ms": SOCKET_TIMEOUT_MS,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else ""
            )
        for key, value in (
            ("ssl.ca.location", self.ssl_ca_location),
            ("ssl.certificate.location", self.ssl_certificate_location),
            ("ssl.key.location", self.ssl_key_location),
        ):
            if value:
                conf[key] = value
        if self.ssl_key_password:
            conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf

    def environment(self) -> dict[str, str]:
        """These settings as TOCSIN_* variables, for a worker started as a child process
        (the password travels in the child's environment, never on its command line)."""
        env = {"TOCSIN_BOOTSTRAP_SERVERS": self.bootstrap_servers,
               "TOCSIN_SECURITY_PROTOCOL": self.security_protocol,
               "TOCSIN_TOPIC_PREFIX": self.topic_prefix,
               "TOCSIN_PARTITIONS": str(self.partitions),
               "TOCSIN_REPLICATION_FACTOR": str(self.replication_factor),
               "TOCSIN_CLIENT_ID": self.client_id,
               "TOCSIN_STUCK_RESTART_S": f"{self.stuck_restart_s:g}"}  # fmt: skip
        if self.min_insync_replicas is not None:  # else derived alike in the child
            env["TOCSIN_MIN_INSYNC_REPLICAS"] = str(self.min_insync_replicas)
        for name in ("sasl_mechanism", "sasl_username", "ssl_ca_location",
                     "ssl_certificate_location", "ssl_key_location"):  # fmt: skip
            value = getattr(self, name)
            if value:
                env[f"TOCSIN_{name.upper()}"] = value
        for name in ("sasl_password", "ssl_key_password"):
            secret = getattr(self, name)
            if secret is not None:
                env[f"TOCSIN_{name.upper()}"] = secret.get_secret_value()
        return env

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_LOG_", frozen=True, extra="ignore")

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"
