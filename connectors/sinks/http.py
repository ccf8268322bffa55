"""One POST through httpx, its answer classified into a Delivery.

Timeouts are explicit (connect 3 s, whole request 10 s by default): a pager API that
hangs must cost one attempt, not a stuck worker.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from connectors.sinks.delivery import Delivery, parse_retry_after, retryable_status

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def make_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT, **kwargs: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.AsyncClient(timeout=timeout, limits=limits, **kwargs)


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
               ref: str | None = None) -> Delivery:  # fmt: skip
    """POST ``body``; 2xx is delivered, 429/408/5xx and network errors are retryable."""
    started = time.perf_counter()
    try:
        resp = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Delivery(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}"[:500],
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
    latency = (time.perf_counter() - started) * 1000
    if resp.is_success:
        return Delivery(ok=True, status_code=resp.status_code, external_ref=ref,
                        latency_ms=latency)  # fmt: skip
    return Delivery(
        ok=False, retryable=retryable_status(resp.status_code),
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
        status_code=resp.status_code, error=f"HTTP {resp.status_code}: {resp.text[:300]}",
        latency_ms=latency,
    )  # fmt: skip
