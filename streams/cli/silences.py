"""`tocsin silence add|list|expire` over the API, in the spirit of amtool."""

from __future__ import annotations

import re

import click

from streams.cli.client import Client, emit, output_option

_MATCHER = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_.\-]*)(=~|!~|!=|=)(.*)$")


def parse_matcher(text: str) -> dict[str, str]:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex` (quotes optional)."""
    m = _MATCHER.match(text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r} is not a matcher such as service=search or "
                                 "host=~'web-.*'", param_hint="MATCHERS")  # fmt: skip
    value = m.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return {"label": m.group(1), "op": m.group(2), "value": value}


@click.group()
def silence() -> None:
    """Silences, through the API (TOCSIN_API_URL, TOCSIN_API_TOKEN)."""


@silence.command()
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", "-d", default="1h", show_default=True,
              help="30m, 2h, 1d ... (or --end)")  # fmt: skip
@click.option("--start", default=None, help="ISO time (default: now)")
@click.option("--end", default=None, help="ISO time")
@click.option("--comment", "-c", default="")
@output_option
def add(matchers: tuple[str, ...], duration: str, start: str | None, end: str | None,
        comment: str, output: str) -> None:  # fmt: skip
    """Mute alerts matching every MATCHER (service=search host=~'web-.*')."""
    from streams.api.app import duration as parse_duration

    body: dict[str, object] = {"matchers": [parse_matcher(m) for m in matchers],
                               "comment": comment}  # fmt: skip
    if start:
        body["starts_at"] = start
    if end:
        body["ends_at"] = end
    else:
        span = parse_duration(duration)
        if span is None:
            raise click.BadParameter(f"{duration!r}: such as 30m, 2h, 1d",
                                     param_hint="--duration")  # fmt: skip
        body["duration"] = span.total_seconds()
    doc = Client().json("POST", "/silences", json=body)
    if output == "json":
        emit(doc, output)
    else:
        click.echo(doc["silence_id"])


@silence.command("list")
@click.option("--state", type=click.Choice(["active", "pending", "expired"]), default=None)
@output_option
def list_(state: str | None, output: str) -> None:
    """Silences, newest first."""
    params = {"state": state} if state else {}
    doc = Client().json("GET", "/silences", params=params)
    rows = [{**s, "matchers": " ".join(f"{m['label']}{m['op']}{m['value']}"
                                       for m in s["matchers"])} for s in doc["items"]]  # fmt: skip
    emit(doc, output, rows, ("silence_id", "state", "matchers", "ends_at", "author", "comment"))


@silence.command()
@click.argument("silence_ids", nargs=-1, required=True)
def expire(silence_ids: tuple[str, ...]) -> None:
    """Expire silences now."""
    client = Client()
    for sid in silence_ids:
        client.call("DELETE", f"/silences/{sid}")
        click.echo(f"expired {sid}")
