"""`tocsin demo`: the end-to-end demonstration on the local broker."""

from __future__ import annotations

import click

from streams.admin import create_topics
from streams.catalog import Catalog
from streams.demo.burst import run_burst
from streams.kafka import make_admin
from streams.settings import KafkaSettings


@click.command()
@click.option("--seconds", default=10, show_default=True, help="Seconds of synthetic data.")
def demo(seconds: int) -> None:
    """Create the topics, send a burst of metrics and logs, read them back validated."""
    settings = KafkaSettings()
    created = create_topics(make_admin(settings), Catalog(settings))
    click.echo(f"topics ready ({len(created)} created)")
    raise SystemExit(run_burst(settings, click.echo, seconds=seconds))
