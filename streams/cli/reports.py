"""`tocsin report --since 30d`, `tocsin report --by month --csv` and `tocsin postmortem
INC-ID` over the API."""

from __future__ import annotations

from typing import Any

import click

from streams.cli.client import Client, emit, output_option, table

STATS = ("key", "incidents", "acknowledged", "resolved", "mtta_s", "mttr_s", "mttr_p50_s",
         "mttr_p90_s", "mttr_p99_s", "ack_sla_breaches")  # fmt: skip
SLA = ("tenant", "month", "incidents", "acknowledged", "resolved", "mtta_s", "mttr_s",
       "mttr_p90_s", "ack_sla_breaches", "ack_sla_met_pct")  # fmt: skip


@click.command()
@click.option("--since", default="30d", show_default=True, help="30d, 12h or an ISO time")
@click.option("--until", default=None, help="ISO time (default: now)")
@click.option("--by", "group_by", type=click.Choice(["service", "team", "priority", "month"]),
              default="service", show_default=True,
              help="month: MTTA, MTTR and ack-SLA breaches per tenant and month "
                   "(--from/--to instead of --since/--until)")  # fmt: skip
@click.option("--from", "from_", default=None, help="--by month: first month, YYYY-MM")
@click.option("--to", default=None, help="--by month: last month, YYYY-MM (default: this one)")
@click.option("--tenant", default=None, help="the tenant to report on (provider role)")
@click.option("--all-tenants", is_flag=True, help="--by month: every tenant (provider role)")
@click.option("--csv", "as_csv", is_flag=True, help="the rows as CSV (for billing, sheets)")
@output_option
def report(since: str, until: str | None, group_by: str, from_: str | None, to: str | None,
           tenant: str | None, all_tenants: bool, as_csv: bool, output: str) -> None:  # fmt: skip
    """Incident count, MTTA, MTTR (mean, p50/p90/p99) and ack-SLA breaches per group, or
    per tenant and month (``--by month``)."""
    params: dict[str, Any] = {"tenant": tenant} if tenant else {}
    if group_by == "month":
        path = "/reports/sla"
        params |= {k: v for k, v in (("from", from_), ("to", to)) if v}
        if all_tenants:
            params["tenants"] = "all"
    else:
        path = "/reports"
        params |= {"since": since, "group_by": group_by, **({"until": until} if until else {})}
    client = Client()
    if as_csv:
        click.echo(client.call("GET", path, params=params,
                               headers={"Accept": "text/csv"}).text, nl=False)  # fmt: skip
        return
    doc = client.json("GET", path, params=params)
    if output == "json":
        emit(doc, output)
        return
    click.echo(f"{doc['since']} .. {doc['until']} by {group_by} (seconds)")
    if group_by == "month":
        table(doc["months"], SLA)
        return
    table([*doc["groups"], doc["total"]], STATS)
    click.echo("\nNOISIEST RULES")
    table(doc["noisiest_rules"], ("rule", "alert_events", "incidents"))


@click.command()
@click.argument("incident_id")
def postmortem(incident_id: str) -> None:
    """Print the Markdown postmortem draft of a resolved incident."""
    click.echo(Client().call("GET", f"/incidents/{incident_id}/postmortem").text)
