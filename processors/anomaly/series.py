"""One anomaly detector per series, with warm-up and k-of-n debouncing.

`AnomalySeries.update(value, at)` scores the point (before learning from it) and
returns the verdict; `transition` is set only when the debounced alert state
changes, so one episode is one firing and one resolution.

A rule fires when k of the last n points are rare (undamped score at or over the
threshold) and one of them opened a new episode (its episode score is over the
threshold too: clearly rarer than everything of the last 70-139 points). The second
condition keeps a burst's aftershocks, each rare on its own, from paging again once
the first page resolved: the reason the episode damps the NAB ranking. Requiring two
rare points (of ten, by default) keeps single rare points of a heavy-tailed series
from paging: pure lognormal noise would page a series every few days on one point.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Literal, NamedTuple

from processors.anomaly.forecast import HoltWintersDetector
from processors.anomaly.likelihood import LikelihoodDetector
from processors.anomaly.recent import Recent
from schemas.anomaly import AnomalySpec

Transition = Literal["firing", "resolved"]
_HEAD = "<HBII16s"  # version, firing, quiet run, points since fresh, recent bits
_VERSION = 4  # 4: the last hours (likelihood); 3: no last hours
_NEVER = 0xFFFFFFFF
_INF = math.inf
Detector = LikelihoodDetector | HoltWintersDetector


def _detector(spec: AnomalySpec) -> Detector:
    if spec.detector == "holt_winters":
        return HoltWintersDetector(spec.season)
    return LikelihoodDetector(spec.season)


def _load(spec: AnomalySpec, data: bytes) -> Detector:
    if spec.detector == "holt_winters":
        return HoltWintersDetector.load(spec.season, data)
    return LikelihoodDetector.load(spec.season, data)


class AnomalyVerdict(NamedTuple):
    """One point's verdict: immutable, and a tuple because a frozen dataclass costs the hot
    path ~0.7 us a point to build (one object.__setattr__ per field)."""

    # the episode score: a point scores high only when it is clearly rarer than its last
    # 70-139 points, so a long anomaly reads as one detection (what `tocsin eval nab` writes)
    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    transition: Transition | None
    # this point's undamped calibrated score: what debouncing compares with the
    # threshold, so what an alert shows (a firing point's episode score may be damped)
    rarity: float = 0.0


# (from a tuple: the NamedTuple's own __new__ is a Python function, twice the cost)
_verdict = AnomalyVerdict._make


class AnomalySeries:
    __slots__ = (
        "firing",
        "fresh",
        "hours",
        "quiet",
        "recent",
        "spec",
        "state",
        "threshold",
        "warm_up",
        "window",
    )

    def __init__(self, spec: AnomalySpec) -> None:
        self.spec = spec
        # the spec's numbers read on every point, as plain slots (a pydantic model's
        # attribute costs several times a slot's)
        self.warm_up, self.threshold = spec.warm_up, spec.threshold
        self.window = (1 << spec.debounce_n) - 1  # the last n verdicts' bits
        self.state: Detector = _detector(spec)
        self.firing = False
        self.quiet = 0
        # bit i: the point i points ago was rare (an int: a list of n bools would cost
        # holt_winters' 288-point season its last bytes under 16 KiB)
        self.recent = 0
        self.fresh = _NEVER  # points since one opened a new episode
        # the last hours, for the page; holt_winters' 288-point season leaves no room for
        # them under 16 KiB
        self.hours = Recent() if spec.detector != "holt_winters" else None

    def update(self, value: float, at: datetime) -> AnomalyVerdict:
        if not -_INF < value < _INF:
            # a NaN/inf sample says nothing about the series: not learned, never alerts
            return AnomalyVerdict(0.0, None, None, None, None)
        state = self.state
        hours = self.hours
        if hours is None:
            score, calibrated, expected, spread = state.score(value, at)
        else:
            ts = at.timestamp()
            hours.add(value, ts)
            score, calibrated, expected, spread = state.score(value, at, ts)
        if state.n <= self.warm_up:
            score = calibrated = 0.0  # still learning: no score may fire
        threshold = self.threshold
        high = calibrated >= threshold
        recent = (self.recent << 1 | high) & self.window
        self.recent = recent
        fresh = self.fresh = 0 if score >= threshold else self.fresh + 1
        transition: Transition | None = None
        if self.firing:
            self.quiet = 0 if high else self.quiet + 1
            if self.quiet >= self.spec.resolve_after:
                self.firing, transition = False, "resolved"
        elif recent:
            spec = self.spec
            if fresh < spec.debounce_n and recent.bit_count() >= spec.debounce_k:
                self.firing, self.quiet, transition = True, 0, "firing"
        band = 3.0 * spread
        return _verdict((score, expected, expected - band, expected + band, transition, calibrated))

    def memory_bytes(self) -> int:
        """An estimate of this series' state (Python objects included)."""
        hours = self.hours.memory_bytes() if self.hours is not None else 0
        return 200 + hours + self.state.memory_bytes()

    def last_hours(self) -> list[float | None]:
        """The series' last hours as the page shows them (recent.py); empty if not kept."""
        return self.hours.values() if self.hours is not None else []

    def to_bytes(self) -> bytes:
        head = struct.pack(
            _HEAD,
            _VERSION,
            int(self.firing),
            self.quiet,
            min(self.fresh, _NEVER),
            self.recent.to_bytes(16, "little"),
        )
        hours = self.hours.dump() if self.hours is not None else b""
        return head + hours + self.state.dump()

    @classmethod
    def from_bytes(cls, spec: AnomalySpec, data: bytes) -> AnomalySeries:
        (version,) = struct.unpack_from("<H", data)
        if version not in (3, _VERSION):
            raise ValueError(f"unsupported anomaly state version {version}")
        _, firing, quiet, fresh, recent = struct.unpack_from(_HEAD, data)
        s = cls(spec)
        s.firing, s.quiet, s.fresh = bool(firing), quiet, fresh
        s.recent = int.from_bytes(recent, "little") & ((1 << spec.debounce_n) - 1)
        at = struct.calcsize(_HEAD)
        if version == _VERSION and s.hours is not None:
            s.hours, at = Recent.load(data, at)
        s.state = _load(spec, data[at:])
        return s
