"""`tocsin oncall who --schedule NAME [--at TIME]`: answered by the same code that pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from processors.incidents.oncall import next_handoffs, on_call
from schemas import ConfigError
from schemas.config import load_installation


@click.group()
def oncall() -> None:
    """On-call schedules."""


@oncall.command()
@click.option("--schedule", "schedule_id", required=True)
@click.option("--at", "at_text", default=None, help="ISO time (default: now); naive = UTC.")
@click.option("--config", "config_paths", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--tenant", default="default", show_default=True,
              help="Whose schedule (a directory under tenants/ of the config).")  # fmt: skip
def who(schedule_id: str, at_text: str | None, config_paths: tuple[Path, ...],
        tenant: str) -> None:  # fmt: skip
    """Who is on call for a schedule, and the next handoffs."""
    try:
        inst = load_installation(list(config_paths))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    cfg = inst.tenant(tenant)
    if cfg is None:
        raise click.ClickException(
            f"no tenant {tenant!r} (known: {', '.join(sorted(inst.tenants))})"
        )
    schedule = cfg.schedule(schedule_id)
    if schedule is None:
        known = ", ".join(s.id for s in cfg.schedules) or "none"
        raise click.ClickException(f"no schedule {schedule_id!r} (known: {known})")
    try:
        at = datetime.fromisoformat(at_text) if at_text else datetime.now(UTC)
    except ValueError as exc:
        raise click.BadParameter(f"{at_text!r} is not an ISO time such as 2026-03-30T09:00 "
                                 "or 2026-03-30T07:00:00Z", param_hint="--at") from exc  # fmt: skip
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    tz = ZoneInfo(schedule.timezone)

    def person(user_id: str | None) -> str:
        user = cfg.user(user_id) if user_id else None
        return f"{user.name} ({user.id})" if user else (user_id or "nobody")

    # the schedule's own wall clock: handoffs are written in it ("09:00"), so they read as such
    local = at.astimezone(tz)
    click.echo(f"{schedule.id} ({schedule.timezone}) at {local:%a %Y-%m-%d %H:%M:%S %Z}: "
               f"{person(on_call(schedule, at))}")  # fmt: skip
    for when, nxt in next_handoffs(schedule, at):
        click.echo(f"  from {when.astimezone(tz):%a %Y-%m-%d %H:%M %Z}: {person(nxt)}")
