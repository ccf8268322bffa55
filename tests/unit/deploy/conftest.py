"""Rendered manifests and the CLI's commands, shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from tests.unit.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
OVERLAY = DEPLOY / "overlays" / "example"
BASE = DEPLOY / "base"


@pytest.fixture(scope="session")
def overlay() -> list[dict[str, Any]]:
    return render(OVERLAY)


@pytest.fixture(scope="session")
def base() -> list[dict[str, Any]]:
    return render(BASE)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def cli_command(args: list[str]) -> tuple[click.Command, list[str]]:
    """The click command `tocsin <args>` runs and the arguments left for it, so tests
    check that manifests call commands and options that really exist."""
    from streams.cli.main import cli

    command: click.Command = cli
    rest = list(args)
    ctx = click.Context(cli)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`tocsin {' '.join(args)}`: no command {rest[0]!r}"
        command, rest = sub, rest[1:]
    assert not isinstance(command, click.Group), f"`tocsin {' '.join(args)}` names a group"
    return command, rest


def option_values(args: list[str]) -> dict[str, list[str]]:
    """`--rules a --rules b --x 1` -> {"--rules": ["a", "b"], "--x": ["1"]}."""
    out: dict[str, list[str]] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else ""
            out.setdefault(arg, []).append(value)
    return out


def assert_valid_invocation(args: list[str]) -> click.Command:
    command, rest = cli_command(args)
    declared = {opt for p in command.params for opt in getattr(p, "opts", [])}
    declared |= {opt for p in command.params for opt in getattr(p, "secondary_opts", [])}
    unknown = [a for a in rest if a.startswith("--") and a not in declared]
    assert not unknown, f"`tocsin {' '.join(args)}`: unknown options {unknown}"
    return command
