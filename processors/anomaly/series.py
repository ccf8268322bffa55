"""One anomaly detector per series, with warm-up and k-of-n debouncing.

`AnomalySeries.update(value, at)` scores the point (before learning from it) and
returns the verdict; `transition` is set only when the debounced alert state
changes, so one episode is one firing and one resolution.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from processors.anomaly.forecast import HoltWintersDetector
from processors.anomaly.likelihood import LikelihoodDetector
from schemas.anomaly import AnomalySpec

Transition = Literal["firing", "resolved"]
_HEAD = "<HBIB"  # version, firing, quiet run, recent-window length
_VERSION = 2
Detector = LikelihoodDetector | HoltWintersDetector


def _detector(spec: AnomalySpec) -> Detector:
    if spec.detector == "holt_winters":
        return HoltWintersDetector(spec.season)
    return LikelihoodDetector(spec.season)


def _load(spec: AnomalySpec, data: bytes) -> Detector:
    if spec.detector == "holt_winters":
        return HoltWintersDetector.load(spec.season, data)
    return LikelihoodDetector.load(spec.season, data)


@dataclass(frozen=True, slots=True)
class AnomalyVerdict:
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


class AnomalySeries:
    __slots__ = ("firing", "quiet", "recent", "spec", "state")

    def __init__(self, spec: AnomalySpec) -> None:
        self.spec = spec
        self.state: Detector = _detector(spec)
        self.firing = False
        self.quiet = 0
        self.recent: list[bool] = []

    def update(self, value: float, at: datetime) -> AnomalyVerdict:
        spec = self.spec
        if not math.isfinite(value):
            # a NaN/inf sample says nothing about the series: not learned, never alerts
            return AnomalyVerdict(0.0, None, None, None, None)
        score, calibrated, expected, spread = self.state.score(value, at)
        if self.state.n <= spec.warm_up:
            score = calibrated = 0.0  # still learning: no score may fire
        high = calibrated >= spec.threshold
        self.recent.append(high)
        if len(self.recent) > spec.debounce_n:
            del self.recent[0]
        transition: Transition | None = None
        if not self.firing and sum(self.recent) >= spec.debounce_k:
            self.firing, self.quiet, transition = True, 0, "firing"
        elif self.firing:
            self.quiet = 0 if high else self.quiet + 1
            if self.quiet >= spec.resolve_after:
                self.firing, transition = False, "resolved"
        band = 3.0 * spread
        return AnomalyVerdict(
            score, expected, expected - band, expected + band, transition, calibrated
        )

    def memory_bytes(self) -> int:
        """An estimate of this series' state (Python objects included)."""
        return 200 + self.state.memory_bytes() + 8 * len(self.recent)

    def to_bytes(self) -> bytes:
        bits = sum(1 << i for i, b in enumerate(self.recent) if b)
        head = struct.pack(_HEAD, _VERSION, int(self.firing), self.quiet, len(self.recent))
        return head + struct.pack("<Q", bits) + self.state.dump()

    @classmethod
    def from_bytes(cls, spec: AnomalySpec, data: bytes) -> AnomalySeries:
        version, firing, quiet, n = struct.unpack_from(_HEAD, data)
        if version != _VERSION:
            raise ValueError(f"unsupported anomaly state version {version}")
        offset = struct.calcsize(_HEAD)
        (bits,) = struct.unpack_from("<Q", data, offset)
        s = cls(spec)
        s.firing, s.quiet = bool(firing), quiet
        s.recent = [bool(bits >> i & 1) for i in range(n)]
        s.state = _load(spec, data[offset + 8 :])
        return s
