"""`tocsin config check PATH...`: validate the incident-response configuration."""

from __future__ import annotations

from pathlib import Path

import click

from schemas import ConfigError
from schemas.config import load_config


@click.group()
def config() -> None:
    """Work with the incident-response configuration."""


@config.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate users, teams, services, routes, policies, schedules and heartbeats; exit 1
    on errors."""
    try:
        cfg = load_config(list(paths))
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from exc
    click.echo(f"config OK: {len(cfg.users)} users, {len(cfg.teams)} teams, "
               f"{len(cfg.services)} services, {len(cfg.escalation_policies)} escalation "
               f"policies, {len(cfg.schedules)} schedules, "
               f"{len(cfg.heartbeats)} heartbeats")  # fmt: skip
