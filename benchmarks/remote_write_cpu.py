"""CPU per remote-write sample of the gateway's decoding, in process, best of several.

`python -m benchmarks.remote_write_cpu [ROUNDS]` decodes the load generator's bodies
(benchmarks/remote_write_load.py: 2,000 series of one sample per request) into
`metrics` records the way the gateway does (`decode_remote_write_body`: the lean
path, its series known after the first round) and the model way (one
`MetricSample` per sample, `model_records`), and prints the CPU per sample of each.
Kafka is not involved: the figure is what the gateway spends before producing.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from benchmarks.remote_write_load import bodies, fleet
from connectors.sources.remote_write import parse_write_request
from streams.gateway.decoding import Topics, decode_remote_write_body
from streams.gateway.records import Outcome, TimeBounds
from streams.gateway.remote_write_records import model_records

REQUESTS = 6


def _best(rounds: int, samples: int, decode: Callable[[bytes], Outcome],
          requests: list[bytes]) -> float:  # fmt: skip
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for body in requests:
            out = decode(body)
            assert out.accepted == samples // len(requests), out.error_text()
        best = min(best, time.process_time() - started)
    return best / samples * 1e6


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 5
    topics = Topics("metrics", "logs", "alerts", "deadletter")
    now = datetime.now(UTC)
    bounds = TimeBounds(now, timedelta(minutes=5), timedelta(days=7))
    made = bodies(fleet(REQUESTS * 2_000), int(now.timestamp() * 1000), random.Random(1))
    requests, samples = [b for b, _ in made], sum(n for _, n in made)

    def model(body: bytes) -> Outcome:
        out = Outcome("remote_write")
        model_records(out, parse_write_request(body), topics.metrics, bounds, "default")
        return out

    lean = _best(rounds, samples, lambda b: decode_remote_write_body(topics, b, bounds), requests)
    slow = _best(rounds, samples, model, requests)
    print(f"{samples} samples in {len(requests)} requests, best of {rounds}: "
          f"gateway's path {lean:.2f} us CPU per sample, one MetricSample per sample "
          f"{slow:.2f} us")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
