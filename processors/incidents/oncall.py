"""Who is on call: rotations with a local handoff time, layers and overrides.

Rotations whose length is a whole number of days advance on the schedule's
calendar (local dates in its IANA zone), so a handoff at 09:00 stays at 09:00
across a DST change even though that day is 23 or 25 hours long. Shorter,
hour-based rotations advance in elapsed time. Higher layers override lower
ones; an override beats every layer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.config.models import Layer, Schedule


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
    schedule: Schedule, after: datetime, count: int = 3
) -> list[tuple[datetime, str | None]]:
    """The next `count` changes of the on-call user after `after` (hour resolution)."""
    out: list[tuple[datetime, str | None]] = []
    current = on_call(schedule, after)
    t = after
    while len(out) < count and t < after + timedelta(days=400):
        t += timedelta(minutes=15)
        who = on_call(schedule, t)
        if who != current:
            out.append((t, who))
            current = who
    return out
