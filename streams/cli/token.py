"""`tocsin token new --user ID --role ROLE`: an API token and the config line for it."""

from __future__ import annotations

import click


@click.group()
def token() -> None:
    """API tokens (kept in the config as SHA-256 digests only)."""


@token.command()
@click.option("--user", required=True, help="The user id the token acts as.")
@click.option("--role", type=click.Choice(["viewer", "responder", "admin"]), default="viewer",
              show_default=True)  # fmt: skip
@click.option("--name", default="", help="What the token is for (shown in the config).")
def new(user: str, role: str, name: str) -> None:
    """Print a new token (give it to its user, once) and the line for `api_tokens:`."""
    from streams.api.auth import new_token

    secret, digest = new_token()
    click.echo(f"token (shown once): {secret}")
    label = f", name: {name!r}" if name else ""
    click.echo(f"config:  - {{user: {user}, role: {role}, sha256: {digest}{label}}}")
