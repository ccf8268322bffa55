"""`tocsin token new --user ID --role ROLE`: an API token and the config line for it;
`tocsin token intake`: a gateway token of a tenant and its line for ``intake.tokens``."""

from __future__ import annotations

import click


@click.group()
def token() -> None:
    """API and intake tokens (kept in the config as SHA-256 digests only)."""


@token.command()
@click.option("--user", required=True, help="The user id the token acts as.")
@click.option("--role", type=click.Choice(["viewer", "responder", "admin", "provider"]),
              default="viewer", show_default=True,
              help="provider: acts across tenants (the provider's own config only).")  # fmt: skip
@click.option("--name", default="", help="What the token is for (shown in the config).")
def new(user: str, role: str, name: str) -> None:
    """Print a new token (give it to its user, once) and the line for `api_tokens:`."""
    from streams.api.auth import new_token

    secret, digest = new_token()
    click.echo(f"token (shown once): {secret}")
    label = f", name: {name!r}" if name else ""
    click.echo(f"config:  - {{user: {user}, role: {role}, sha256: {digest}{label}}}")


@token.command()
@click.option("--only", type=click.Choice(["zabbix", "checkmk"]), default=None,
              help="Open that intake's route only.")  # fmt: skip
@click.option("--name", default="", help="What the token is for (shown in the config).")
def intake(only: str | None, name: str) -> None:
    """Print a new gateway token for a tenant's sender (Prometheus, Alertmanager, Grafana,
    a script) and the line for `intake: {tokens: [...]}` in the tenant's tocsin.yaml."""
    from streams.api.auth import new_token

    secret, digest = new_token()
    click.echo(f"token (shown once): {secret}")
    extra = (f", only: {only}" if only else "") + (f", name: {name!r}" if name else "")
    click.echo(f"config:  - {{sha256: {digest}{extra}}}")
