"""Retry timing and the circuit breaker, with time as an argument."""

from __future__ import annotations

import random

from connectors.sinks.delivery import Breaker, RetryPolicy, parse_retry_after, retryable_status


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=8.0, rng=random.Random(1))
    for attempt in range(1, 10):
        delays = [policy.delay(attempt, None) for _ in range(200)]
        ceiling = min(8.0, 0.5 * 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8, "full jitter spreads over the whole window"
        assert len(set(delays)) > 150, "retries of many senders do not synchronise"


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(cap_s=30)
    assert policy.delay(1, 7.0) == 7.0
    assert policy.delay(1, 3600.0) == 30
    assert parse_retry_after("12") == 12.0 and parse_retry_after("soon") is None
    assert retryable_status(429) and retryable_status(503) and not retryable_status(400)


def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    b = Breaker(threshold=3, cool_s=10)
    for t in range(3):
        assert b.allow(t)
        b.record(False, t)
    assert not b.allow(3) and b.wait(3) == 9
    assert b.allow(12.5), "half-open: one trial after the cool-down"
    b.record(True, 12.5)
    assert b.allow(12.6) and not b.open
