"""`tocsin rules check PATH...`: validate rule files; non-zero exit on any error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from schemas import ConfigError
from schemas.config import load_installation
from schemas.config.installation import rule_pack
from schemas.rules import RuleFile, load_rule_files

F = TypeVar("F", bound=Callable[..., Any])


def tenants_option(f: F) -> F:
    """`--config DIR`: the installation whose tenants' own rules join the pack."""
    return click.option(
        "--config", "config_paths", multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Configuration directory: the rules of each tenant under tenants/<id>/rules "
        "join the pack, each seeing its own tenant's samples only.",
    )(f)  # fmt: skip


def load_pack(rule_paths: tuple[Path, ...], config_paths: tuple[Path, ...]) -> RuleFile:
    """The shared rule pack, plus the tenants' own rules when a configuration is given;
    a ClickException names every problem."""
    try:
        pack = load_rule_files(list(rule_paths))
        if config_paths:
            pack = rule_pack(pack, load_installation(list(config_paths)))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return pack


@click.group()
def rules() -> None:
    """Work with rule files."""


@rules.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@tenants_option
def check(paths: tuple[Path, ...], config_paths: tuple[Path, ...]) -> None:
    """Validate rule files (or directories of them), and with --config the tenants' own
    rules against them; errors name file, rule and field."""
    try:
        pack = load_pack(paths, config_paths)
    except click.ClickException as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1) from exc
    kinds: dict[str, int] = {}
    for r in pack.rules:
        kinds[r.aggregation] = kinds.get(r.aggregation, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    own = [r.tenant for r in pack.rules if r.tenant is not None]
    tenants = ", ".join(sorted(set(own)))
    click.echo(f"{len(pack.rules)} rules OK ({summary})"
               + (f"; {len(own)} of them tenants' own ({tenants})" if own else ""))  # fmt: skip
