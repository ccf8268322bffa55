"""What every sink returns and the policy the notifier applies around it.

``Delivery`` is data, not an exception: the outcome of one attempt (for the receipt)
and whether trying again can help (for the retry policy). ``RetryPolicy`` and
``Breaker`` take time as an argument, so they are tested without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from schemas.notifications import Notification


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt, for the receipt and the retry policy."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    status_code: int | None = None
    error: str = ""
    external_ref: str | None = None
    latency_ms: float = 0.0


class Sink(Protocol):
    async def deliver(self, n: Notification) -> Delivery: ...


V = TypeVar("V")
DEFAULT_TENANT = "default"


def for_tenant(table: Mapping[str, V], n: Notification, fallback: bool = True) -> V | None:
    """A key or URL of the notification's alias among its own tenant's entries only:
    `alias` (then `default`) for the provider's own tenant, `<tenant>/alias` (then
    `<tenant>/default`) for any other. Never another tenant's, never the provider's for
    a customer: a page of one tenant cannot reach another's pager."""
    prefix = "" if n.tenant == DEFAULT_TENANT else f"{n.tenant}/"
    found = table.get(prefix + n.target)
    if found is None and fallback:
        found = table.get(prefix + "default")
    return found


def of_tenant(n: Notification) -> str:
    """` of tenant 'x'` for a customer's notification (error messages), else nothing."""
    return "" if n.tenant == DEFAULT_TENANT else f" of tenant {n.tenant!r}"


def retryable_status(status: int | None) -> bool:
    """429 and 5xx are the receiver's or the network's trouble; other 4xx are ours."""
    return status is None or status == 429 or status == 408 or status >= 500


def parse_retry_after(raw: str | None, cap: float = 3600.0) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for APIs and treated as absent)."""
    if raw is None:
        return None
    try:
        return max(0.0, min(float(raw), cap))
    except ValueError:
        return None


@dataclass
class Breaker:
    """Per destination: opens after ``threshold`` consecutive failures, lets one trial
    through after ``cool_s`` (half-open), closes on its success."""

    threshold: int = 5
    cool_s: float = 30.0
    failures: int = 0
    opened_at: float = 0.0

    def allow(self, now: float) -> bool:
        return self.failures < self.threshold or now - self.opened_at >= self.cool_s

    def wait(self, now: float) -> float:
        """Seconds until the breaker lets a trial through (0 when closed)."""
        return 0.0 if self.allow(now) else self.cool_s - (now - self.opened_at)

    @property
    def open(self) -> bool:
        return self.failures >= self.threshold

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = now


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a server's Retry-After wins."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap_s)
        return self.rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
