"""A trivial baseline to read a NAB figure against: the rolling z-score of each point.

Each point is scored by its distance from the mean of the previous WINDOW points in
units of their standard deviation, before it joins them (test-then-train, as the
detector), mapped to z / (1 + z) so that a flat line that moves scores 1. Nothing is
learned beyond the window; NaN and infinite values score 0 and are skipped. The NAB
threshold for it is chosen on the dev split like the detector's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

# a day of 5-minute points, the step of most NAB series: one fixed memory, not fitted
WINDOW = 288


def zscores(values: Sequence[float], window: int = WINDOW) -> list[float]:
    out: list[float] = []
    recent: deque[float] = deque()
    origin: float | None = None  # sums are kept relative to the first value: no cancellation
    total = squares = 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(0.0)
            continue
        if origin is None:
            origin = v
        x = v - origin
        n = len(recent)
        if n < 2:
            out.append(0.0)
        else:
            mean = total / n
            var = max(squares / n - mean * mean, 0.0)
            sd = math.sqrt(var)
            if sd > 1e-12 * max(abs(mean + origin), 1.0):
                z = abs(x - mean) / sd
                out.append(z / (1.0 + z))
            else:
                out.append(0.0 if abs(x - mean) <= 1e-12 * max(abs(v), 1.0) else 1.0)
        recent.append(x)
        total += x
        squares += x * x
        if len(recent) > window:
            old = recent.popleft()
            total -= old
            squares -= old * old
    return out
