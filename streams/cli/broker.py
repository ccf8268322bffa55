"""`tocsin broker start|stop|status|reset`: the local KRaft broker."""

from __future__ import annotations

import click

from schemas import BrokerError
from streams.broker.local import LocalBroker, port_of
from streams.settings import KafkaSettings


def _broker(port: int | None, heap: str) -> LocalBroker:
    return LocalBroker(port=port or port_of(KafkaSettings().bootstrap_servers), heap=heap)


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
def start(port: int | None, heap: str, timeout: float) -> None:
    """Start the broker (no-op when it already runs) and wait until it answers."""
    b = _broker(port, heap)
    try:
        status = b.start(timeout=timeout)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(status))


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
