"""`tocsin topics create|check|list`: the topic catalog against the cluster."""

from __future__ import annotations

import click

from streams.admin import check_topics, create_topics
from streams.catalog import Catalog
from streams.cli.run import require_kafka_access
from streams.kafka import make_admin
from streams.settings import KafkaSettings


@click.group()
def topics() -> None:
    """Create and verify the topics of the catalog."""


@topics.command()
def create() -> None:
    """Create every missing catalog topic (idempotent)."""
    require_kafka_access()
    settings = KafkaSettings()
    created = create_topics(make_admin(settings), Catalog(settings))
    for name in created:
        click.echo(f"created {name}")
    if not created:
        click.echo("all topics exist")


@topics.command()
def check() -> None:
    """Report drift from the catalog and the agents' changelogs; exit 1 when there is any."""
    from streams.agents.changelog_specs import changelog_topics

    require_kafka_access()
    settings = KafkaSettings()
    drifts = check_topics(make_admin(settings), Catalog(settings), changelog_topics(settings))
    for drift in drifts:
        click.echo(f"DRIFT {drift}")
    if drifts:
        raise SystemExit(1)
    click.echo("topics match the catalog")


@topics.command(name="list")
def list_() -> None:
    """Print the catalog: name, partitions, key, value model, cleanup policy."""
    settings = KafkaSettings()
    for t in Catalog(settings).resolved():
        model = t.spec.value.__name__ if t.spec.value else "bytes"
        click.echo(
            f"{t.name:32} p={t.partitions:<3} {t.spec.cleanup_policy:8} "
            f"{model:16} key: {t.spec.key}"
        )
