"""The one way from `KafkaSettings` to a secured Kafka connection, for both client stacks.

librdkafka (confluent-kafka: processor, router, outbox, notifier, gateway, ingest, admin)
takes `KafkaSettings.client_config()`; faust (aiokafka underneath: the agents' consumer,
producer and changelog) takes `faust_options()`. Both come from the same fields, so a
worker cannot reach one cluster in TLS and the other in plain text.

`verify_access` asks the cluster once before a worker starts: a wrong password or an
untrusted certificate then ends the worker with a clear message instead of leaving it
retrying forever in its clients' reconnect loops.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

from schemas.errors import TocsinError
from streams.settings import KafkaSettings

# librdkafka errors that no retry can fix: the credentials or the TLS setup are wrong.
# A broker that rejects the client's certificate shows as a transport error whose text
# names the TLS alert, hence the words.
_AUTH_ERRORS = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL",
                          "ILLEGAL_SASL_STATE", "UNSUPPORTED_SASL_MECHANISM"})  # fmt: skip
_AUTH_WORDS = ("authentication", "handshake", "certificate")


class KafkaAccessError(TocsinError):
    """The cluster refused this worker's credentials or TLS settings."""


def describe(settings: KafkaSettings) -> str:
    """How the settings reach Kafka, for logs and errors: never the password."""
    text = f"{settings.security_protocol} to {settings.bootstrap_servers}"
    if settings.security_protocol.startswith("SASL"):
        text += f" with {settings.sasl_mechanism} as user {settings.sasl_username!r}"
    if settings.ssl_certificate_location:
        text += f", client certificate {settings.ssl_certificate_location}"
    return text


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A verifying TLS context for aiokafka, from the same CA/certificate/key files that
    librdkafka reads; None when the protocol is not TLS. Without a CA file the system's
    trust store is used, as librdkafka does (managed clusters with public certificates)."""
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=settings.ssl_ca_location)  # fmt: skip
    if settings.ssl_certificate_location:
        password = settings.ssl_key_password
        context.load_cert_chain(
            settings.ssl_certificate_location,
            settings.ssl_key_location,
            password=password.get_secret_value() if password else None,
        )
    return context


def aiokafka_options(settings: KafkaSettings) -> dict[str, Any]:
    """aiokafka's security options for these settings, mapped here rather than through
    faust's own mapping so that a client outside the agents does not load faust."""
    sasl = settings.security_protocol.startswith("SASL")
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return {
        "security_protocol": settings.security_protocol,
        "ssl_context": ssl_context(settings),
        "sasl_mechanism": settings.sasl_mechanism if sasl else "PLAIN",
        "sasl_plain_username": settings.sasl_username if sasl else None,
        "sasl_plain_password": password if sasl else None,
    }


def faust_credentials(settings: KafkaSettings) -> Any:
    """faust's `broker_credentials` for these settings (None for PLAINTEXT)."""
    import faust  # slow to import: only the agents need it

    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_password is not None  # the settings' validator ensures it
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,  # with a context faust speaks SASL_SSL, else SASL_PLAINTEXT
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def faust_options(settings: KafkaSettings) -> dict[str, Any]:
    """The broker, credentials and client id of a faust App: `faust.App(id, **these, ...)`."""
    return {
        "broker": [f"kafka://{h.strip()}" for h in settings.bootstrap_servers.split(",")],
        "broker_credentials": faust_credentials(settings),
        "broker_client_id": settings.client_id,
    }


def verify_access(settings: KafkaSettings, timeout: float = 20.0) -> None:
    """Raise KafkaAccessError when the cluster refuses these credentials or TLS settings.

    Only a refusal is an error: a cluster that does not answer within `timeout` (down,
    restarting) is left to the worker's own reconnects, as without security. PLAINTEXT
    has nothing to refuse and is not checked."""
    if settings.security_protocol == "PLAINTEXT":
        return
    from confluent_kafka.admin import AdminClient

    refused: list[str] = []
    done = threading.Event()

    def on_error(err: Any) -> None:
        if err.name() in _AUTH_ERRORS or any(w in err.str().lower() for w in _AUTH_WORDS):
            refused.append(err.str())
            done.set()

    quiet = logging.getLogger("tocsin.rdkafka.access")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient(settings.client_config() | {"error_cb": on_error, "logger": quiet})
    result: list[bool] = []

    def ask() -> None:
        try:
            result.append(bool(admin.list_topics(timeout=timeout).brokers))
        except Exception:
            result.append(False)
        done.set()

    threading.Thread(target=ask, daemon=True, name="tocsin-access-check").start()
    # error_cb runs from poll(): list_topics polls internally, this loop makes sure the
    # callback also fires while the metadata request is still waiting
    deadline = timeout + 1.0
    while not done.wait(0.2) and deadline > 0:
        admin.poll(0)
        deadline -= 0.2
    for _ in range(5):  # a failed request may return before its error is served
        if refused or (result and result[0]):
            break
        admin.poll(0.05)
    if refused:
        detail = refused[0]
        secret = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        if secret:
            detail = detail.replace(secret, "***")
        raise KafkaAccessError(
            f"Kafka refused the connection ({describe(settings)}): {detail}. " + _hint(detail)
        )


def _hint(error: str) -> str:
    if not any(w in error.lower() for w in ("handshake", "certificate", "ssl/tls")):
        return ("Authentication failed: check TOCSIN_SASL_USERNAME, TOCSIN_SASL_PASSWORD "
                "(or TOCSIN_SASL_PASSWORD_FILE) and TOCSIN_SASL_MECHANISM.")  # fmt: skip
    return ("TLS handshake failed: check TOCSIN_SSL_CA_LOCATION and the client certificate "
            "(TOCSIN_SSL_CERTIFICATE_LOCATION, TOCSIN_SSL_KEY_LOCATION).")  # fmt: skip
