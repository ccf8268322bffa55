"""How unusual a score is for its series, said the way an on-call engineer counts.

A score s stands for D = DECADES * s / (1 - s) decades of rarity rated per unit of
time (timescale.py): a surprise this large comes about once in 10^D points of a
5-minute series, whatever the series' real step. The likelihood detector scores up to
three surprises and keeps the largest, so a point this rare under any one of them
comes up to three times as often; the words use that, the more common, figure.
"""

from __future__ import annotations

from processors.anomaly.calibration import DECADES
from processors.anomaly.timescale import REFERENCE_STEP_S

SURPRISES = 3
_HOUR, _DAY = 3600.0, 86400.0
_SPANS = [
    (3652.5 * _DAY, "once in ten years"),
    (365.25 * _DAY, "once a year"),
    (30 * _DAY, "once a month"),
    (7 * _DAY, "once a week"),
    (_DAY, "once a day"),
    (_HOUR, "once an hour"),
]


def every_s(score: float) -> float:
    """How often, in seconds, a point at least this rare comes on this series."""
    if score <= 0.0:
        return 0.0
    decades = DECADES * score / (1.0 - score) if score < 1.0 else 99.0
    return float(REFERENCE_STEP_S * 10.0 ** min(decades, 99.0) / SURPRISES)


def rarity(score: float) -> str:
    """e.g. "rarer than once a week for this series"."""
    every = every_s(score)
    for span, words in _SPANS:
        if every >= span:
            return f"rarer than {words} for this series"
    minutes = round(every / 60.0)
    if minutes < 1:
        return "as common as most points of this series"
    return f"about once in {minutes} minutes for this series"
