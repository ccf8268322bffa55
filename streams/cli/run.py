"""`tocsin run <worker>`: start one long-running worker process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from streams.cli.main import LazyGroup

WORKERS: dict[str, str] = {
    "processor": "streams.cli.run_processor:processor",
    "agents": "streams.cli.run_agents:agents",
    "notifier": "streams.cli.run_notifier:notifier",
    "gateway": "streams.cli.run_gateway:gateway",
    "ingest": "streams.cli.run_ingest:ingest",
    "expiry": "streams.cli.run_expiry:expiry",
    "projector": "streams.cli.run_projector:projector",
    "api": "streams.cli.run_api:api",
}


# Read-only endpoints, so every interface by default: Kubernetes probes and Prometheus
# reach a pod on its pod IP. Loopback (127.0.0.1) keeps them on the machine.
health_host_option = click.option(
    "--health-host",
    default="0.0.0.0",
    show_default=True,
    envvar="TOCSIN_HEALTH_HOST",
    help="Address of /metrics, /healthz, /readyz (env TOCSIN_HEALTH_HOST).",
)


F = TypeVar("F", bound=Callable[..., Any])


def health_port_option(default: int = 9400) -> Callable[[F], F]:
    return click.option("--health-port", default=default, show_default=True, type=int,
                        help="Port of /metrics, /healthz, /readyz (0: any free port).")  # fmt: skip


def require_kafka_access() -> None:
    """End the command with a clear message when the cluster refuses the configured
    credentials or TLS settings, instead of letting its clients retry forever."""
    from pydantic import ValidationError

    from streams.kafka_security import KafkaAccessError, verify_access
    from streams.settings import KafkaSettings

    try:
        verify_access(KafkaSettings())
    except ValidationError as exc:
        raise click.ClickException(f"invalid Kafka settings: {exc}") from None
    except KafkaAccessError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, lazy=WORKERS)
def run() -> None:
    """Run a worker: processor, agents, notifier, gateway, ingest, expiry, projector or api."""
    require_kafka_access()
