"""`tocsin run expiry`."""

from __future__ import annotations

from datetime import timedelta

import click

from streams.cli.run import health_host_option, health_port_option


@click.command()
@click.option("--max-lease", "max_lease_s", default=3600.0, show_default=True, type=float,
              help="Seconds: a firing alert resolves at its ends_at, at most this long "
                   "after it was last received; a (re)start re-reads this much of `alerts`.",
              )  # fmt: skip
@health_host_option
@health_port_option()
def expiry(max_lease_s: float, health_port: int, health_host: str) -> None:
    """Resolve firing alerts that were not sent again before their end (resolve timeout)."""
    from streams.expiry.worker import ExpiryMetrics, ExpiryWorker
    from streams.health import Health
    from streams.runtime.bootstrap import serve
    from streams.settings import KafkaSettings

    if max_lease_s <= 0:
        raise click.BadParameter("must be positive", param_hint="--max-lease")
    metrics, health, settings = ExpiryMetrics(), Health(), KafkaSettings()
    worker = ExpiryWorker(settings, timedelta(seconds=max_lease_s), metrics, health)
    serve(worker.run, health, metrics.registry, host=health_host, port=health_port,
          kafka=settings)  # fmt: skip
