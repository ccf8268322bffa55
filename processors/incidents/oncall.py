"""Who is on call: rotations with a local handoff time, layers and overrides.

Rotations whose length is a whole number of days advance on the schedule's
calendar (local dates in its IANA zone), so a handoff at 09:00 stays at 09:00
across a DST change even though that day is 23 or 25 hours long. Shorter,
hour-based rotations advance in elapsed time. Higher layers override lower
ones; an override beats every layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.commands import OnCallOverride
from schemas.config.models import Config, Layer, Override, Schedule


def on_call(schedule: Schedule, at: datetime) -> str | None:
    if at.tzinfo is None:
        raise ValueError("on_call: `at` must be timezone-aware")
    for o in schedule.overrides:
        if o.start <= at < o.end:
            return o.user
    tz = ZoneInfo(schedule.timezone)
    for layer in reversed(schedule.layers):
        user = _layer_user(layer, at, tz)
        if user is not None:
            return user
    return None


def _layer_user(layer: Layer, at: datetime, tz: ZoneInfo) -> str | None:
    local = at.astimezone(tz)
    start = datetime.combine(layer.start, layer.handoff, tz)
    if local < start:
        return None
    length = layer.length
    if length % timedelta(days=1) == timedelta(0):
        days = length.days
        # the "rotation day" starts at the handoff time, in local wall-clock terms
        rotation_day = (local - timedelta(hours=layer.handoff.hour, minutes=layer.handoff.minute)
                        ).date()  # fmt: skip
        turns = (rotation_day - layer.start).days // days
    else:
        elapsed = at.astimezone(UTC) - start.astimezone(UTC)
        turns = int(elapsed / length)
    return layer.users[turns % len(layer.users)]


def next_handoffs(
    schedule: Schedule, after: datetime, count: int = 3, horizon: timedelta = timedelta(days=400)
) -> list[tuple[datetime, str | None]]:
    """The next `count` changes of the on-call user after `after`, at their exact instants.

    The user can only change at an override's start or end, a layer's start or one of
    its handoffs, so those instants are the only ones examined.
    """
    out: list[tuple[datetime, str | None]] = []
    current = on_call(schedule, after)
    for t in _change_points(schedule, after, after + horizon):
        who = on_call(schedule, t)
        if who != current:
            out.append((t, who))
            current = who
            if len(out) == count:
                break
    return out


def _change_points(schedule: Schedule, after: datetime, until: datetime) -> list[datetime]:
    points: set[datetime] = set()
    for o in schedule.overrides:
        points.update((o.start, o.end))
    tz = ZoneInfo(schedule.timezone)
    for layer in schedule.layers:
        start = datetime.combine(layer.start, layer.handoff, tz)
        points.add(start)
        if layer.length % timedelta(days=1) == timedelta(0):
            # every local day's handoff: rotations advance on the local calendar
            day = max(layer.start, after.astimezone(tz).date() - timedelta(days=1))
            while (handoff := datetime.combine(day, layer.handoff, tz)) <= until:
                points.add(handoff)
                day += timedelta(days=1)
        else:
            # in elapsed time, as _layer_user counts turns: an aware local datetime plus
            # a timedelta moves its wall clock, an hour off the instant across DST
            first = start.astimezone(UTC)
            turn = max(0, int((after - first) / layer.length))
            while (handoff := first + turn * layer.length) <= until:
                points.add(handoff)
                turn += 1
    return sorted(p.astimezone(UTC) for p in points if after < p <= until)


def with_overrides(cfg: Config, overrides: Iterable[OnCallOverride]) -> Config:
    """`cfg` with overrides made at run time added to their schedules (ahead of the
    config's own, so the latest word wins); overrides of unknown schedules are ignored."""
    extra: dict[str, list[Override]] = {}
    for o in overrides:
        extra.setdefault(o.schedule, []).append(Override(user=o.user, start=o.start, end=o.end))
    if not extra:
        return cfg
    schedules = [
        s.model_copy(update={"overrides": [*reversed(extra[s.id]), *s.overrides]})
        if s.id in extra else s
        for s in cfg.schedules
    ]  # fmt: skip
    return cfg.model_copy(update={"schedules": schedules})
