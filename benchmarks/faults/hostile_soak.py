"""Generated hostile requests against a gateway process, as fast as it answers: the
answers counted by status (any 5xx fails), its peak memory and any exit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import aiohttp

from benchmarks.faults.harness import (
    Row,
    children_peak_rss,
    exited_by_itself,
    free_port,
    kill9,
    peak_rss,
    start_gateway,
    wait_healthy,
)
from benchmarks.faults.hostile import requests
from benchmarks.scratch import scratch

TOKEN, SIGNING = "fault-token", "fault-signing"
CONCURRENCY = 128


async def _fire(url: str, n: int, seed: int, statuses: Counter[str],
                examples: dict[str, str]) -> float:  # fmt: skip
    """Send the requests from CONCURRENCY senders; the slowest answer, in seconds."""
    queue = iter(requests(seed, n, TOKEN, SIGNING, large=0.0002))
    timeout = aiohttp.ClientTimeout(total=120)
    # a connection per sender: with fewer, aiohttp hands a released connection to the
    # sender that asks next rather than to one waiting, and the waiters starve until
    # their timeout (the gateway never saw those requests)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    slowest = 0.0
    async with aiohttp.ClientSession(url, timeout=timeout, auto_decompress=False,
                                     connector=connector) as session:  # fmt: skip

        async def one() -> None:
            nonlocal slowest
            for path, headers, body, what in queue:
                started = time.monotonic()
                try:
                    async with session.post(path, data=body, headers=headers) as resp:
                        text = await resp.read()
                        statuses[str(resp.status)] += 1
                        if resp.status >= 500 and str(resp.status) not in examples:
                            examples[str(resp.status)] = f"{what} on {path}: {text[:160]!r}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1
                    examples.setdefault(type(exc).__name__, f"{what} on {path} "
                                        f"({len(body)} bytes): {exc!r:.160}")  # fmt: skip
                slowest = max(slowest, time.monotonic() - started)

        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return slowest


def run(bootstrap: str, n: int, tmp: Path, seed: int = 1) -> Row:
    rerun = f"python -m benchmarks.faults hostile --requests {n}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    statuses: Counter[str] = Counter()
    examples: dict[str, str] = {}
    with scratch(bootstrap, "fkh", partitions=1) as s:
        log = tmp / "gateway-hostile.log"
        # one client sends everything: the per-credential rate limit would answer most of
        # it 429 before any parser saw it (the limit has tests of its own)
        proc = start_gateway(s, log, port, TOKEN, SIGNING, TOCSIN_GATEWAY_RATE_LIMIT="0")
        try:
            wait_healthy(url, proc, log)
            base = peak_rss(proc.pid)
            started = time.monotonic()
            slowest = asyncio.run(_fire(url, n, seed, statuses, examples))
            elapsed = time.monotonic() - started
            exits = 1 if exited_by_itself(proc) else 0
            peak = peak_rss(proc.pid) if not exits else 0
            decoders = children_peak_rss(proc.pid) if not exits else {}
        finally:
            kill9(proc)
    server = sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 500)
    errors = sum(v for k, v in statuses.items() if not k.isdigit())
    notes = [f"answers: {dict(sorted(statuses.items()))}",
             f"{n / elapsed:,.0f} requests/s over {elapsed:.0f}s",
             f"gateway peak RSS {peak >> 20} MiB (idle {base >> 20} MiB), its decoding "
             f"processes {', '.join(f'{v >> 20}' for v in decoders.values())} MiB",
             f"slowest answer {slowest:.1f}s"]  # fmt: skip
    notes += [f"{k}: {v}" for k, v in examples.items()]
    ok = not server and not errors and not exits
    return Row("hostile input", n, 0, 0, slowest, exits, ok, rerun, notes)
