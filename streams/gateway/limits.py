"""Per-credential rate limits for the gateway: one token bucket per credential.

A caller that floods is answered 429 with Retry-After before its requests reach the
producer queue, so one noisy sender cannot take the queue (and the 429s it causes)
from every other sender. Buckets are per gateway process: with N replicas behind a
Service a credential gets up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` requests per second sustained, ``burst`` at once; rate 0 turns it off."""

    rate: float = 200.0
    burst: int = 400

    def __post_init__(self) -> None:
        if self.rate < 0 or (self.rate > 0 and self.burst < 1):
            raise ValueError("rate limit: rate must be >= 0 and burst >= 1")

    @property
    def enabled(self) -> bool:
        return self.rate > 0


class RateLimiter:
    """Token buckets keyed by credential id; ``take`` answers how long to wait, or 0.

    The number of buckets is bounded (least recently used dropped first), because
    credential ids of open gateways include the caller's address.
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = 10_000) -> None:  # fmt: skip
        self.limit = limit
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, credential: str) -> float:
        """0.0 when the request may proceed, else the seconds until it would."""
        if not self.limit.enabled:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.pop(credential, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.rate)
        if tokens >= 1.0:
            self._store(credential, tokens - 1.0, now)
            return 0.0
        self._store(credential, tokens, now)
        return (1.0 - tokens) / self.limit.rate

    def _store(self, credential: str, tokens: float, now: float) -> None:
        self._buckets[credential] = (tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


def retry_after(wait_s: float) -> str:
    """Retry-After is whole seconds; never 0, which would invite an immediate retry."""
    return str(max(1, math.ceil(wait_s)))
