"""`tocsin report --since 30d` and `tocsin postmortem INC-ID` over the API."""

from __future__ import annotations

import click

from streams.cli.client import Client, emit, output_option, table

STATS = ("key", "incidents", "acknowledged", "resolved", "mtta_s", "mttr_s", "mttr_p50_s",
         "mttr_p90_s", "mttr_p99_s", "ack_sla_breaches")  # fmt: skip


@click.command()
@click.option("--since", default="30d", show_default=True, help="30d, 12h or an ISO time")
@click.option("--until", default=None, help="ISO time (default: now)")
@click.option("--by", "group_by", type=click.Choice(["service", "team", "priority"]),
              default="service", show_default=True)  # fmt: skip
@output_option
def report(since: str, until: str | None, group_by: str, output: str) -> None:
    """Incident count, MTTA, MTTR (mean, p50/p90/p99) and ack-SLA breaches per group."""
    params = {"since": since, "group_by": group_by, **({"until": until} if until else {})}
    doc = Client().json("GET", "/reports", params=params)
    if output == "json":
        emit(doc, output)
        return
    click.echo(f"{doc['since']} .. {doc['until']} by {group_by} (seconds)")
    table([*doc["groups"], doc["total"]], STATS)
    click.echo("\nNOISIEST RULES")
    table(doc["noisiest_rules"], ("rule", "alert_events", "incidents"))


@click.command()
@click.argument("incident_id")
def postmortem(incident_id: str) -> None:
    """Print the Markdown postmortem draft of a resolved incident."""
    click.echo(Client().call("GET", f"/incidents/{incident_id}/postmortem").text)
