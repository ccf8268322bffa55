"""`tocsin run processor --rules PATH [--config DIR]`."""

from __future__ import annotations

from pathlib import Path

import click

from streams.cli.rules import load_pack, tenants_option
from streams.cli.run import health_host_option, health_port_option
from streams.health import Health
from streams.processor.metrics import ProcessorMetrics
from streams.processor.worker import ProcessorWorker, default_instance_id
from streams.runtime.bootstrap import serve
from streams.settings import KafkaSettings


@click.command()
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
@tenants_option
@click.option("--instance-id", default=None, help="Stable id (default: $HOSTNAME).")
@click.option("--group", default=None, help="Consumer group (default: <topic prefix>processor).")
@health_host_option
@health_port_option()
@click.option(
    "--checkpoint-every",
    default=10.0,
    show_default=True,
    help="Seconds between engine checkpoints (bounds the replay after a crash).",
)
@click.option("--batch-size", default=20_000, show_default=True, help="Records per batch, at most.")
@click.option(
    "--commit-every-ms",
    default=1000.0,
    show_default=True,
    help="How long the offsets of batches that wrote nothing may wait for a commit "
    "(bounds the replay after a crash; a batch that writes commits at once).",
)
@click.option(
    "--commit-linger-ms",
    default=20.0,
    show_default=True,
    help="How long a batch that wrote waits for more input to join its commit (one "
    "window's transitions come from several partitions a few ms apart).",
)
@click.option(
    "--max-wait-ms",
    default=20.0,
    show_default=True,
    help="How long an idle worker waits for the first record; a batch never waits to "
    "fill (it takes what has arrived).",
)
def processor(
    rule_paths: tuple[Path, ...],
    config_paths: tuple[Path, ...],
    instance_id: str | None,
    group: str,
    health_port: int,
    health_host: str,
    checkpoint_every: float,
    batch_size: int,
    max_wait_ms: float,
    commit_every_ms: float,
    commit_linger_ms: float,
) -> None:
    """Evaluate rules over `metrics` and `logs`; emit alert transitions exactly once.

    Each sample goes through the shared rules and its own tenant's (--config), and its
    alerts carry its tenant."""
    pack = load_pack(rule_paths, config_paths)
    metrics = ProcessorMetrics()
    health = Health()
    settings = KafkaSettings()
    worker = ProcessorWorker(
        settings,
        pack,
        instance_id=instance_id or default_instance_id(),
        # the topic prefix isolates deployments sharing a cluster: so does the group
        group_id=group or f"{settings.topic_prefix}processor",
        checkpoint_every_s=checkpoint_every,
        batch_size=batch_size,
        max_wait_s=max_wait_ms / 1000,
        commit_every_s=commit_every_ms / 1000,
        commit_linger_s=commit_linger_ms / 1000,
        metrics=metrics,
        health=health,
    )
    serve(worker.run, health, metrics.registry, host=health_host, port=health_port,
          kafka=settings)  # fmt: skip
