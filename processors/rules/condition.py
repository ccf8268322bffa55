"""The alert state machine of one series of one rule (Prometheus `for:` semantics).

inactive -> pending (condition true, `for` not yet elapsed) -> firing -> resolved.
Hysteresis: a firing alert uses `resolve_threshold`, and `keep_firing_for`
keeps it firing after the condition stops holding, so a value hovering
around the threshold does not flap.
"""

from __future__ import annotations

from schemas.rules import Condition

INACTIVE, PENDING, FIRING = 0, 1, 2

_OPS = {
    ">": float.__gt__,
    ">=": float.__ge__,
    "<": float.__lt__,
    "<=": float.__le__,
}


class CompiledCondition:
    __slots__ = ("for_s", "keep_s", "op", "resolve", "threshold")

    def __init__(self, c: Condition) -> None:
        self.op = _OPS[c.op]
        self.threshold = float(c.threshold)
        self.resolve = float(
            c.resolve_threshold if c.resolve_threshold is not None else c.threshold
        )
        self.for_s = c.for_.total_seconds()
        self.keep_s = c.keep_firing_for.total_seconds()


class AlertState:
    """State of one series: phase, when the condition started holding (`active_since`,
    the pending time) and when it last started firing, and its value when it last was
    pending or firing. (Whether a pending is on the alerts topic with no firing or
    resolution after it is the rule's `RuleState.announced`: few series ever are.)"""

    __slots__ = ("active_since", "fired_at", "last_true", "phase", "value")

    def __init__(self) -> None:
        self.phase = INACTIVE
        self.active_since = 0.0
        self.fired_at = 0.0
        self.last_true = 0.0
        self.value: float | None = None

    def evaluate(self, cond: CompiledCondition, value: float | None, at: float) -> int | None:
        """Feed one evaluation; return the new phase when it changed, else None."""
        if value is None:
            holds = False  # a gap in data: no result, as in Prometheus
        elif self.phase == FIRING:
            holds = cond.op(value, cond.resolve)
        else:
            holds = cond.op(value, cond.threshold)
        if value is not None:
            self.value = value
        if holds:
            self.last_true = at
            if self.phase == INACTIVE:
                self.active_since = at
                if cond.for_s <= 0:
                    self.phase = FIRING
                    self.fired_at = at
                    return FIRING
                self.phase = PENDING
                return PENDING
            if self.phase == PENDING and at - self.active_since >= cond.for_s:
                self.phase = FIRING
                self.fired_at = at
                return FIRING
            return None
        if self.phase == FIRING and at - self.last_true < cond.keep_s:
            return None
        if self.phase != INACTIVE:
            self.phase = INACTIVE
            return INACTIVE
        return None

    def dump(self) -> list[float | int | None]:
        return [
            self.phase,
            self.active_since,
            self.last_true,
            self.value,
            self.fired_at,
        ]

    def load_state(self, data: list[float | int | None]) -> None:
        phase, since, last, value, fired = data
        self.phase = int(phase or 0)
        self.active_since = float(since or 0.0)
        self.last_true = float(last or 0.0)
        self.value = None if value is None else float(value)
        self.fired_at = float(fired or 0.0)
