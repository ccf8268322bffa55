"""SIGKILL the gateway again and again while clients send, retrying as Prometheus and
Alertmanager do (the same bytes again after a refused connection, a 5xx or a 429).

What must hold: every sample of every acknowledged (202) request is in `metrics`; a
sample stored more than once carries the same event id each time (a consumer can drop
the copy). A copy under a new id is counted as duplicated, a missing sample as lost.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from benchmarks.faults.harness import (
    Row,
    exited_by_itself,
    free_port,
    kill9,
    read_values,
    start_gateway,
)
from benchmarks.scratch import scratch

TOKEN, SIGNING = "fault-token", "fault-signing"
BATCH = 50


def _batch(client: int, n: int) -> tuple[list[float], bytes]:
    values = [client * 1e7 + n * BATCH + i for i in range(BATCH)]
    now = datetime.now(UTC).isoformat()  # the gateway refuses times far from now
    lines = [orjson.dumps({"name": "load", "value": v, "time": now,
                           "labels": {"client": str(client)}}) for v in values]  # fmt: skip
    return values, b"\n".join(lines)


def _client(url: str, client: int, stop: threading.Event, acked: list[float],
            latencies: list[float], refused: list[str]) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    n = 0
    with httpx.Client(base_url=url, timeout=15) as c:
        while not stop.is_set():
            values, body = _batch(client, n)
            first = time.monotonic()
            while True:  # the same bytes again until accepted, as a scraper's queue does
                try:
                    r = c.post("/v1/metrics", content=body, headers=headers)
                    if r.status_code == 202:
                        acked.extend(values)
                        latencies.append(time.monotonic() - first)
                        break
                    if r.status_code < 500 and r.status_code != 429:
                        refused.append(f"valid batch refused: {r.status_code} {r.text[:200]}")
                        return
                except httpx.HTTPError:
                    pass
                if stop.is_set() and time.monotonic() - first > 120:
                    return  # never accepted: not acknowledged, so not owed
                time.sleep(0.2)
            n += 1


def run(bootstrap: str, trials: int, tmp: Path, seed: int | None = None,
        max_delay: float = 6.0, clients: int = 4) -> Row:  # fmt: skip
    rng = random.Random(seed)
    rerun = f"python -m benchmarks.faults gateway --trials {trials}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acked: list[float] = []
    latencies: list[float] = []
    refused: list[str] = []
    exits = 0
    with scratch(bootstrap, "fkg", partitions=3) as s:
        stop = threading.Event()
        threads = [threading.Thread(target=_client, args=(url, i, stop, acked, latencies, refused),
                                    daemon=True) for i in range(clients)]  # fmt: skip
        for t in threads:
            t.start()
        for trial in range(trials):
            proc = start_gateway(s, tmp / f"gateway-{trial}.log", port, TOKEN, SIGNING)
            time.sleep(rng.uniform(0.2, max_delay))
            if exited_by_itself(proc):
                exits += 1
            kill9(proc)
        proc = start_gateway(s, tmp / "gateway-final.log", port, TOKEN, SIGNING)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(180)
        kill9(proc)
        stored = [orjson.loads(v) for v in read_values(s, s.topic_prefix + "metrics")]
    ids: dict[float, list[str]] = defaultdict(list)
    for d in stored:
        ids[float(d["value"])].append(str(d["event_id"]))
    lost = sum(1 for v in acked if v not in ids)
    new_ids = sum(len(set(v)) - 1 for v in ids.values())
    same_ids = sum(len(v) - len(set(v)) for v in ids.values())
    notes = [f"acknowledged samples {len(acked)}, stored records {len(stored)}",
             f"copies under the same event id (deduplicable): {same_ids}",
             f"copies under a new event id: {new_ids}"]  # fmt: skip
    notes += refused[:3]
    ok = not lost and not new_ids and not exits and bool(acked) and not refused
    return Row("gateway SIGKILL", trials, lost, new_ids, max(latencies, default=None), exits,
               ok, rerun, notes)  # fmt: skip
