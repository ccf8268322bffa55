"""`tocsin oncall who --schedule NAME [--at TIME]`: answered by the same code that pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from processors.incidents.oncall import next_handoffs, on_call
from schemas import ConfigError
from schemas.config import load_config


@click.group()
def oncall() -> None:
    """On-call schedules."""


@oncall.command()
@click.option("--schedule", "schedule_id", required=True)
@click.option("--at", "at_text", default=None, help="ISO time (default: now); naive = UTC.")
@click.option("--config", "config_paths", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path))  # fmt: skip
def who(schedule_id: str, at_text: str | None, config_paths: tuple[Path, ...]) -> None:
    """Who is on call for a schedule, and the next handoffs."""
    try:
        cfg = load_config(list(config_paths))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    schedule = cfg.schedule(schedule_id)
    if schedule is None:
        known = ", ".join(s.id for s in cfg.schedules) or "none"
        raise click.ClickException(f"no schedule {schedule_id!r} (known: {known})")
    at = datetime.fromisoformat(at_text) if at_text else datetime.now(UTC)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    user_id = on_call(schedule, at)
    user = cfg.user(user_id) if user_id else None
    name = f"{user.name} ({user.id})" if user else "nobody"
    click.echo(f"{schedule.id} at {at.isoformat()}: {name}")
    for when, nxt in next_handoffs(schedule, at):
        click.echo(f"  from {when.astimezone(UTC).isoformat()}: {nxt or 'nobody'}")
