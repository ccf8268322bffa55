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


@dataclass(frozen=True, slots=True)
class TenantLimit:
    """One tenant's quota: ``requests`` and ``items`` per second sustained (0: none), and
    ``burst_s`` seconds of each that may come at once."""

    requests: float = 0.0
    items: float = 0.0
    burst_s: float = 2.0


# Every tenant's quota when an installation has several and the gateway is not told
# otherwise: a share of what one gateway process was measured to take, so that one
# tenant cannot take it whole while a normal Prometheus and Alertmanager of one tenant
# stay far under it (the derivation: docs/tenants.md, "Quotas").
SHARED_REQUESTS_PER_S = 300.0
SHARED_ITEMS_PER_S = 10_000.0
SHARED_BURST_S = 2.0


def default_tenant_limit(tenants: int, requests: float | None = None,
                         items: float | None = None,
                         burst_s: float | None = None) -> TenantLimit:  # fmt: skip
    """The gateway's quota for every tenant: what it was told (0: none), else the shared
    defaults when the installation has several tenants and none for a single one (one
    tenant has nobody to be protected from)."""
    shared = tenants > 1
    return TenantLimit(
        (SHARED_REQUESTS_PER_S if shared else 0.0) if requests is None else requests,
        (SHARED_ITEMS_PER_S if shared else 0.0) if items is None else items,
        SHARED_BURST_S if burst_s is None else burst_s,
    )


class TenantQuotas:
    """Per-tenant quotas over every credential of the tenant: requests per second (taken
    before the request is read) and items per second (charged once it was decoded).

    One tenant flooding its intake is answered 429 here, before its records reach the
    producer queue the other tenants share, so it cannot delay their alerts. The items
    bucket may go into debt by one request's items (a request is never split); the next
    ones wait until the debt is paid."""

    def __init__(self, default: TenantLimit, overrides: dict[str, TenantLimit] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.default = default
        self.overrides = dict(overrides or {})
        self._clock = clock
        self._requests: dict[str, tuple[float, float]] = {}
        self._items: dict[str, tuple[float, float]] = {}

    def limit(self, tenant: str) -> TenantLimit:
        return self.overrides.get(tenant, self.default)

    def request(self, tenant: str) -> float:
        """0.0 when one more request of ``tenant`` may proceed, else seconds to wait."""
        rate = self.limit(tenant).requests
        return self._take(self._requests, tenant, rate, 1.0, whole=True)

    def items(self, tenant: str, count: int) -> float:
        """Charge ``count`` items to ``tenant``: 0.0 when they may be written, else seconds
        until they may (nothing is charged then)."""
        rate = self.limit(tenant).items
        return self._take(self._items, tenant, rate, float(count), whole=False)

    def _take(self, buckets: dict[str, tuple[float, float]], tenant: str, rate: float,
              cost: float, whole: bool) -> float:  # fmt: skip
        if rate <= 0 or cost <= 0:
            return 0.0
        burst = max(1.0, rate * self.limit(tenant).burst_s)
        now = self._clock()
        tokens, last = buckets.get(tenant, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        enough = tokens >= cost if whole else tokens > 0
        if enough:
            buckets[tenant] = (tokens - cost, now)
            return 0.0
        buckets[tenant] = (tokens, now)
        return ((cost if whole else 0.0) - tokens) / rate + (0.0 if whole else 1.0 / rate)
