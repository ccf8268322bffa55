"""`tocsin run expiry`."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import click

from streams.cli.run import health_host_option


@click.command()
@click.option("--max-lease", "max_lease_s", default=3600.0, show_default=True, type=float,
              help="Seconds: a firing alert resolves at its ends_at, at most this long "
                   "after it was last received; a (re)start re-reads this much of `alerts`.",
              )  # fmt: skip
@health_host_option
@click.option("--health-port", default=9400, show_default=True, type=int)
def expiry(max_lease_s: float, health_port: int, health_host: str) -> None:
    """Resolve firing alerts that were not sent again before their end (resolve timeout)."""
    import structlog

    from streams.expiry.worker import ExpiryMetrics, ExpiryWorker
    from streams.health import Health, HealthServer
    from streams.settings import KafkaSettings

    if max_lease_s <= 0:
        raise click.BadParameter("must be positive", param_hint="--max-lease")
    metrics, health = ExpiryMetrics(), Health()
    worker = ExpiryWorker(KafkaSettings(), timedelta(seconds=max_lease_s), metrics, health)
    server = HealthServer(health, metrics.registry, host=health_host, port=health_port).start()
    structlog.get_logger(__name__).info("health_server", health_port=server.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.run(stop)
    finally:
        server.stop()
