"""`tocsin config check PATH...`: validate the incident-response configuration."""

from __future__ import annotations

from pathlib import Path

import click

from schemas import ConfigError
from schemas.config import load_installation
from schemas.config.installation import rule_pack
from schemas.rules import load_rule_files


@click.group()
def config() -> None:
    """Work with the incident-response configuration."""


@config.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--rules", "rule_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="The shared rule pack, to check the tenants' rules against.")  # fmt: skip
def check(paths: tuple[Path, ...], rule_paths: tuple[Path, ...]) -> None:
    """Validate users, teams, services, routes, policies, schedules and heartbeats of the
    provider and of every tenant under `tenants/<id>/` (with its rules); exit 1 on errors."""
    from streams.status.config import load_status_pages

    try:
        inst = load_installation(list(paths))
        status_pages = load_status_pages(list(paths), inst.tenants)
        if rule_paths:
            rule_pack(load_rule_files(list(rule_paths)), inst)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from exc
    for tid, cfg in sorted(inst.tenants.items(), key=lambda kv: (kv[0] != "default", kv[0])):
        rules = len(inst.rules.get(tid, []))
        click.echo(f"config OK: {'' if tid == 'default' else f'tenant {tid}: '}"
                   f"{len(cfg.users)} users, {len(cfg.teams)} teams, "
                   f"{len(cfg.services)} services, {len(cfg.escalation_policies)} escalation "
                   f"policies, {len(cfg.schedules)} schedules, "
                   f"{len(cfg.heartbeats)} heartbeats"
                   + (f", {rules} rules of its own" if rules else "")
                   + (f", {len(status_pages[tid].pages)} status pages"
                      if tid in status_pages else ""))  # fmt: skip
