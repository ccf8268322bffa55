"""Background load for the gateway: a fleet's metrics as Prometheus remote write.

`python -m benchmarks.remote_write_load URL TOKEN --rate 50000 --seconds 300 --stats F`
sends every series once per interval (series / rate seconds), all stamped with the
time of that pass as one scrape would be, in requests of at most 2,000 samples
(Prometheus' `max_samples_per_send`) from a few concurrent senders, as Prometheus'
remote-write shards do. It runs in its own process so that its CPU does not share a
GIL with whoever measures latency.

The fleet: per host the four gauges the default rule pack watches, at healthy
values, plus six node-exporter-like gauges no rule reads. Every second it writes
what it sent and what the gateway accepted (2xx) to the stats file (JSON), so the
rate achieved is measured at the gateway's answer, not assumed from the schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import time
from pathlib import Path

import cramjam
import httpx
import orjson

PER_SEND = 2_000
SENDERS = 16
WATCHED = ("cpu_percent", "memory_percent", "disk_iowait_ms", "network_latency_ms")
UNWATCHED = ("node_load1", "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes",
             "node_network_receive_bytes", "node_context_switches",
             "node_procs_running")  # fmt: skip
HEALTHY = {"cpu_percent": 35.0, "memory_percent": 55.0, "disk_iowait_ms": 2.0,
           "network_latency_ms": 0.3}  # fmt: skip
SERVICES = ("search", "auth", "catalog", "db", "cache")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _labels(labels: dict[str, str]) -> bytes:
    return b"".join(
        _field(1, _field(1, k.encode()) + _field(2, labels[k].encode())) for k in sorted(labels)
    )


def fleet(n_series: int) -> list[tuple[bytes, float]]:
    """Each series' encoded labels and its typical value."""
    per_host = len(WATCHED) + len(UNWATCHED)
    out: list[tuple[bytes, float]] = []
    for h in range(-(-n_series // per_host)):
        host = {"host": f"load-{h:05d}", "service": SERVICES[h % len(SERVICES)],
                "job": "node", "instance": f"load-{h:05d}:9100"}  # fmt: skip
        for name in WATCHED + UNWATCHED:
            labels = {**host, "__name__": name}
            if name == "network_latency_ms":
                labels |= {"scope": "intra-dc", "peer": f"load-{(h + 1) % 1000:05d}"}
            out.append((_labels(labels), HEALTHY.get(name, 1000.0 + h)))
    return out[:n_series]


def bodies(series: list[tuple[bytes, float]], millis: int, rnd: random.Random
           ) -> list[tuple[bytes, int]]:  # fmt: skip
    """One pass over the fleet at `millis`: snappy WriteRequests of up to PER_SEND
    samples, each with its number of samples."""
    stamp = b"\x10" + _varint(millis)
    out = []
    for start in range(0, len(series), PER_SEND):
        parts = []
        for labels, typical in series[start : start + PER_SEND]:
            sample = b"\x09" + struct.pack("<d", typical * (0.9 + 0.2 * rnd.random())) + stamp
            parts.append(_field(1, labels + _field(2, sample)))
        out.append((bytes(cramjam.snappy.compress_raw(b"".join(parts))), len(parts)))
    return out


async def run(url: str, token: str, rate: float, n_series: int, seconds: float,
              stats: Path) -> None:  # fmt: skip
    series = fleet(n_series)
    interval = n_series / rate
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(maxsize=4 * SENDERS)
    counts = {"sent": 0, "accepted": 0, "refused": 0, "failed": 0, "passes": 0, "late_passes": 0}
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "snappy",
               "Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip
    started = time.time()

    async def send(client: httpx.AsyncClient) -> None:
        while True:
            body, n = await queue.get()
            counts["sent"] += n
            try:
                r = await client.post(url, content=body, headers=headers)
                counts["accepted" if r.status_code < 300 else "refused"] += n
            except httpx.HTTPError:
                counts["failed"] += n
            queue.task_done()

    def write_stats() -> None:
        tmp = stats.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({**counts, "started": started, "at": time.time(),
                                      "series": n_series, "interval": interval}))  # fmt: skip
        tmp.replace(stats)  # a reader sees a whole file

    async def report() -> None:
        while True:
            write_stats()  # a few hundred bytes to the local disk: no thread needed
            await asyncio.sleep(1)

    limits = httpx.Limits(max_connections=SENDERS)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        tasks = [asyncio.create_task(send(client)) for _ in range(SENDERS)]
        tasks.append(asyncio.create_task(report()))
        rnd = random.Random(1)
        due = time.time()
        while time.time() - started < seconds:
            for item in bodies(series, int(due * 1000), rnd):
                await queue.put(item)
            counts["passes"] += 1
            due += interval
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            else:  # behind schedule: the next pass is stamped when it is built
                counts["late_passes"] += 1
                due = time.time()
        await queue.join()
        for t in tasks:
            t.cancel()
    write_stats()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("--rate", type=float, default=50_000)
    p.add_argument("--series", type=int, default=25_000)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--stats", type=Path, required=True)
    a = p.parse_args()
    asyncio.run(run(a.url, a.token, a.rate, a.series, a.seconds, a.stats))


if __name__ == "__main__":
    main()
