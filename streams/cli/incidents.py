"""`tocsin incidents list|show|ack|resolve|note` over the API."""

from __future__ import annotations

import click

from streams.cli.client import Client, emit, output_option, table

COLUMNS = ("incident_id", "status", "priority", "service", "title", "opened_at", "assignee")


@click.group()
def incidents() -> None:
    """Incidents, through the API (TOCSIN_API_URL, TOCSIN_API_TOKEN)."""


@incidents.command("list")
@click.option("--status", multiple=True, help="triggered, acknowledged, resolved (repeatable)")
@click.option("--priority", multiple=True)
@click.option("--service", multiple=True)
@click.option("--team", multiple=True)
@click.option("--since", default=None, help="opened at or after (ISO time)")
@click.option("--search", "q", default="", help="words in the title or labels")
@click.option("--sort", default="-opened_at", show_default=True)
@click.option("--limit", default=50, show_default=True, type=int)
@output_option
def list_(status: tuple[str, ...], priority: tuple[str, ...], service: tuple[str, ...],
          team: tuple[str, ...], since: str | None, q: str, sort: str, limit: int,
          output: str) -> None:  # fmt: skip
    """List incidents, newest first."""
    params: list[tuple[str, str | int]] = [("sort", sort), ("limit", limit)]
    params += [("status", s) for s in status] + [("priority", p) for p in priority]
    params += [("service", s) for s in service] + [("team", t) for t in team]
    if since:
        params.append(("since", since))
    if q:
        params.append(("q", q))
    page = Client().json("GET", "/incidents", params=params)
    emit(page, output, page["items"], COLUMNS)


@incidents.command()
@click.argument("incident_id")
@output_option
def show(incident_id: str, output: str) -> None:
    """One incident: members, who was paged, its timeline."""
    doc = Client().json("GET", f"/incidents/{incident_id}")
    if output == "json":
        emit(doc, output)
        return
    click.echo(f"{doc['incident_id']}  {doc['status']}  {doc['priority']}  {doc['title']}")
    click.echo(f"service {doc['service'] or '-'}  team {doc['team'] or '-'}  assignee "
               f"{doc['assignee'] or '-'}  opened {doc['opened_at']}")  # fmt: skip
    click.echo("\nALERTS")
    table(doc["members"], ("fingerprint", "rule", "status", "value", "threshold", "repeats"))
    click.echo("\nPAGED")
    table(doc["notifications"], ("at", "kind", "channel", "target", "outcome"))
    click.echo("\nTIMELINE")
    table(doc["timeline"], ("at", "kind", "actor", "message"))


def _act(incident_id: str, action: str, body: dict[str, object], output: str) -> None:
    doc = Client().json("POST", f"/incidents/{incident_id}/{action}", json=body)
    if output == "json":
        emit(doc, output)
    else:
        click.echo(f"{action}: accepted as command {doc['command_id']} (the agents apply it)")


@incidents.command()
@click.argument("incident_id")
@output_option
def ack(incident_id: str, output: str) -> None:
    """Acknowledge an incident."""
    _act(incident_id, "ack", {}, output)


@incidents.command()
@click.argument("incident_id")
@output_option
def resolve(incident_id: str, output: str) -> None:
    """Resolve an incident."""
    _act(incident_id, "resolve", {}, output)


@incidents.command()
@click.argument("incident_id")
@click.argument("text")
@output_option
def note(incident_id: str, text: str, output: str) -> None:
    """Add a note to an incident's timeline."""
    _act(incident_id, "note", {"text": text}, output)
