"""One anomaly detector per series, with warm-up and k-of-n debouncing.

`AnomalySeries.update(value, at)` scores the point (before learning from it) and
returns the verdict; `transition` is set only when the debounced alert state
changes, so one episode is one firing and one resolution.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from processors.anomaly import likelihood
from schemas.anomaly import AnomalySpec

Transition = Literal["firing", "resolved"]
_HEAD = "<HBIB"  # version, firing, quiet run, recent-window length


@dataclass(frozen=True, slots=True)
class AnomalyVerdict:
    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    transition: Transition | None


class AnomalySeries:
    __slots__ = ("firing", "quiet", "recent", "spec", "state")

    def __init__(self, spec: AnomalySpec) -> None:
        self.spec = spec
        self.state = likelihood.LikelihoodState(likelihood.slots_for(spec.season))
        self.firing = False
        self.quiet = 0
        self.recent: list[bool] = []

    def update(self, value: float, at: datetime) -> AnomalyVerdict:
        spec = self.spec
        slot = likelihood.slot_of(at, spec.season)
        score, calibrated, expected, spread = likelihood.score(self.state, value, slot)
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
        return AnomalyVerdict(score, expected, expected - band, expected + band, transition)

    def memory_bytes(self) -> int:
        """An estimate of this series' state: slot floats plus fixed overhead."""
        return 200 + 3 * 8 * len(self.state.slots) + 8 * len(self.recent)

    def to_bytes(self) -> bytes:
        bits = sum(1 << i for i, b in enumerate(self.recent) if b)
        head = struct.pack(_HEAD, 1, int(self.firing), self.quiet, len(self.recent))
        return head + struct.pack("<Q", bits) + likelihood.dump(self.state)

    @classmethod
    def from_bytes(cls, spec: AnomalySpec, data: bytes) -> AnomalySeries:
        version, firing, quiet, n = struct.unpack_from(_HEAD, data)
        if version != 1:
            raise ValueError(f"unsupported anomaly state version {version}")
        offset = struct.calcsize(_HEAD)
        (bits,) = struct.unpack_from("<Q", data, offset)
        s = cls(spec)
        s.firing, s.quiet = bool(firing), quiet
        s.recent = [bool(bits >> i & 1) for i in range(n)]
        s.state = likelihood.load(data[offset + 8 :])
        return s
