"""The demo's clock: scenario time runs `speed` times faster than the wall clock.

The fleet's samples carry scenario (event) time. The agents decide on the wall clock,
so the demo divides every timer of the example config (group_wait, escalation
timeouts, group_interval, ...) by the same speed: a 5-minute escalation timeout still
means 5 minutes of the scenario. Every line the demo prints is stamped with scenario
time as `mm:ss` from the start of the fault plan, whichever clock it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from schemas.config import Config

_GROUPING_TIMERS = ("group_wait", "group_wait_critical", "group_interval", "repeat_interval",
                    "reopen_window", "flap_window")  # fmt: skip


def scaled_config(text: str, cfg: Config, speed: float) -> str:
    """The config YAML with every incident timer divided by `speed` (defaults included)."""
    data: dict[str, Any] = yaml.safe_load(text)
    grouping = data.setdefault("grouping", {})
    for name in _GROUPING_TIMERS:
        grouping[name] = _scaled(getattr(cfg.grouping, name), speed)
    for raw, policy in zip(data.get("escalation_policies", []), cfg.escalation_policies,
                           strict=True):  # fmt: skip
        for raw_level, level in zip(raw["levels"], policy.levels, strict=True):
            raw_level["timeout"] = _scaled(level.timeout, speed)
    return yaml.safe_dump(data, sort_keys=False)


def _scaled(d: timedelta, speed: float) -> str:
    return f"{max(0, round(d.total_seconds() * 1000 / speed))}ms"


def mmss(scenario_s: float) -> str:
    sign = "-" if scenario_s < 0 else ""
    s = round(abs(scenario_s))
    return f"{sign}{s // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True, slots=True)
class ScenarioClock:
    """Maps event time and wall time to scenario seconds since the fault plan's start."""

    event0: datetime  # the event time of the fault plan's minute 0
    wall0: datetime  # the wall-clock instant the demo sent minute 0
    speed: float

    def of_event(self, t: datetime) -> float:
        return (t - self.event0).total_seconds()

    def of_wall(self, t: datetime) -> float:
        return (t - self.wall0).total_seconds() * self.speed

    def span(self, wall: timedelta) -> float:
        """A wall-clock duration measured by the agents, in scenario seconds."""
        return wall.total_seconds() * self.speed
