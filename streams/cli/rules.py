"""`tocsin rules check PATH...`: validate rule files; non-zero exit on any error."""

from __future__ import annotations

from pathlib import Path

import click

from schemas import ConfigError
from schemas.rules import load_rule_files


@click.group()
def rules() -> None:
    """Work with rule files."""


@rules.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate rule files (or directories of them); errors name file, rule and field."""
    try:
        pack = load_rule_files(list(paths))
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from exc
    kinds: dict[str, int] = {}
    for r in pack.rules:
        kinds[r.aggregation] = kinds.get(r.aggregation, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    click.echo(f"{len(pack.rules)} rules OK ({summary})")
