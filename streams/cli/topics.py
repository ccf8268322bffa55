"""`tocsin topics create|check|fix|list`: the topic catalog against the cluster."""

from __future__ import annotations

from pathlib import Path

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


@topics.command()
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("tocsin-reassignment.json"), show_default=True,
              help="Where to write the plan for kafka-reassign-partitions.sh.")  # fmt: skip
def fix(dry_run: bool, plan_path: Path) -> None:
    """Repair drift where that is safe: create missing topics, set configs, plan missing
    copies; say what is left and why. Exit 1 when anything is left, a plan included."""
    from streams.agents.changelog_specs import changelog_topics
    from streams.topics_repair import plan_commands, repair, write_plan

    require_kafka_access()
    settings = KafkaSettings()
    done = repair(make_admin(settings), Catalog(settings), changelog_topics(settings),
                  dry_run=dry_run)  # fmt: skip
    would = "would " if dry_run else ""
    for name in done.created:
        click.echo(f"would create {name}" if dry_run else f"created {name}")
    for c in done.set:
        click.echo(f"{would}set {c.topic}: {c.key}={c.actual} -> {c.expected}")
    for left in done.left:
        click.echo(f"LEFT {left}")
    if done.plan:
        for topic in sorted({m.topic for m in done.plan}):
            moves = [m for m in done.plan if m.topic == topic]
            click.echo(f"PLAN {topic}: {len(moves)} partitions to "
                       f"{settings.replication_factor} replicas")  # fmt: skip
        if dry_run:
            click.echo(f"PLAN would be written to {plan_path}, then executed and verified with:")
        else:
            write_plan(plan_path, done.plan)
            click.echo(f"PLAN written to {plan_path}; execute it, then verify it until every "
                       "partition's reassignment is complete:")  # fmt: skip
        for command in plan_commands(settings.bootstrap_servers, plan_path):
            click.echo(f"  {command}")
        if settings.security_protocol != "PLAINTEXT":
            click.echo(f"  (with --command-config naming the client properties of "
                       f"{settings.security_protocol})")  # fmt: skip
    if not done.done:
        raise SystemExit(1)
    if not (done.created or done.set):
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
