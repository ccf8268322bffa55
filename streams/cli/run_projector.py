"""`tocsin run projector`."""

from __future__ import annotations

import click
from pydantic import ValidationError

from streams.cli.run import health_host_option
from streams.health import Health
from streams.runtime.bootstrap import serving
from streams.settings import KafkaSettings


@click.command()
@health_host_option
@click.option("--health-port", default=9400, show_default=True, type=int)
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Records per transaction, at most.")  # fmt: skip
def projector(health_port: int, health_host: str, batch: int) -> None:
    """Project incidents, their ledger, notifications and silences into the SQL store
    (TOCSIN_STORE_PATH for SQLite, TOCSIN_STORE_DSN for PostgreSQL)."""
    from streams.store.db import StoreSettings, open_engine, settings_error
    from streams.store.projector import Projector, ProjectorMetrics

    try:
        store = StoreSettings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid store settings: {settings_error(exc)}") from None
    metrics, health, settings = ProjectorMetrics(), Health(), KafkaSettings()
    worker = Projector(settings, open_engine(store), metrics=metrics, health=health,
                       batch=batch)  # fmt: skip
    with serving(health, metrics.registry, host=health_host, port=health_port,
                 kafka=settings, store=store.describe()) as stop:  # fmt: skip
        worker.run(stop)
