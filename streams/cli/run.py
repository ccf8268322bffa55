"""`tocsin run <worker>`: start one long-running worker process."""

from __future__ import annotations

import click

from streams.cli.main import LazyGroup

WORKERS: dict[str, str] = {
    "processor": "streams.cli.run_processor:processor",
    "agents": "streams.cli.run_agents:agents",
    "notifier": "streams.cli.run_notifier:notifier",
    "gateway": "streams.cli.run_gateway:gateway",
    "ingest": "streams.cli.run_ingest:ingest",
}


@click.group(cls=LazyGroup, lazy=WORKERS)
def run() -> None:
    """Run a worker: processor, agents, notifier or gateway."""
