"""`tocsin broker start|stop|status|reset`: the local KRaft broker."""

from __future__ import annotations

from typing import cast

import click

from schemas import BrokerError
from streams.broker.local import LocalBroker, port_of
from streams.broker.secure import BrokerSecurity, Protocol
from streams.settings import KafkaSettings

USER = "tocsin"  # the SASL user a secured local broker is made with


def _broker(port: int | None, heap: str, protocol: str = "") -> LocalBroker:
    port = port or port_of(KafkaSettings().bootstrap_servers)
    broker = LocalBroker(port=port, heap=heap)
    formatted = broker.data_dir / "tocsin-listeners"
    if not protocol and formatted.exists():  # a secured broker's status, stop, reset
        protocol = formatted.read_text().strip().split(",")[0]
    if not protocol or protocol == "PLAINTEXT":
        return broker
    security = BrokerSecurity((cast(Protocol, protocol),), {USER: broker.user_password(USER)})
    return LocalBroker(port=port, heap=heap, security=security)


_port = click.option(
    "--port",
    type=int,
    default=None,
    help="Broker port (default: the port of TOCSIN_BOOTSTRAP_SERVERS, 9092).",
)
_heap = click.option("--heap", default="512m", show_default=True, help="JVM heap (-Xmx).")


@click.group()
def broker() -> None:
    """Run a local single-node Kafka broker (KRaft) from Maven Central jars."""


@broker.command()
@_port
@_heap
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for metadata.")
@click.option("--security", "protocol", default=None,
              type=click.Choice(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
                                case_sensitive=False),
              help="The client listener's protocol (default: PLAINTEXT, or what the broker "
              "was first started with). SSL and SASL_SSL use a CA and "
              "certificates made for this broker (SSL requires a client certificate); SASL "
              "accepts the user 'tocsin' with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.")  # fmt: skip
def start(port: int | None, heap: str, timeout: float, protocol: str | None) -> None:
    """Start the broker (no-op when it already runs) and wait until it answers."""
    b = _broker(port, heap, (protocol or "").upper())
    try:
        status = b.start(timeout=timeout)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(status))
    if b.security is not None:
        click.echo("reach it with:")
        for key, value in sorted(b.client_environment(USER).items()):
            click.echo(f"  export {key}={value}")


@broker.command()
@_port
def stop(port: int | None) -> None:
    """Stop the broker (fine when it is not running)."""
    b = _broker(port, "512m")
    click.echo("broker stopped" if b.stop() else "broker was not running")


@broker.command()
@_port
def status(port: int | None) -> None:
    """Print whether the broker runs and answers; exit 1 when it does not."""
    st = _broker(port, "512m").status()
    click.echo(str(st))
    if not st.reachable:
        raise SystemExit(1)


@broker.command()
@_port
def reset(port: int | None) -> None:
    """Stop the broker and delete its data (keeps the jar cache)."""
    _broker(port, "512m").reset()
    click.echo("broker data deleted")


@broker.command()
def fetch() -> None:
    """Resolve the broker jars with Maven into the cache (done by start when missing)."""
    try:
        click.echo(f"jars in {LocalBroker().ensure_jars()}")
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
