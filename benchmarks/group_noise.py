"""Pages on pure noise from an anomaly rule whose group holds several series.

A month of 5-minute Gaussian noise (mean 100, sd 3) on n instances of one service,
scored by the default anomaly rule grouped by service: each instance has its own
detector behind the group's one alert (docs/anomaly.md, "Counters and groups of
several series"). Nothing happens, so every page is a false one.

Rerun: `uv run python -m benchmarks.group_noise`
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from processors.rules.engine import RuleEngine
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
STEP = 300.0
DAYS = 30
RUNS = ((1, 4), (10, 4), (50, 2))  # (instances, seeds)


def pages(instances: int, seed: int) -> int:
    rule = Rule.model_validate({"name": "rps", "signal": {"kind": "metric", "metric": "rps"},
                                "group_by": ["service"], "anomaly": {}})  # fmt: skip
    engine = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
    rng = random.Random(seed)
    fired = 0
    for i in range(DAYS * 288):
        for k in range(instances):
            labels = {"service": "api", "instance": f"i{k}"}
            t = T0 + i * STEP + k
            engine.process_metric("rps", labels, 100 + rng.gauss(0, 3), t, route=f"i{k}".encode())
        fired += sum(1 for a in engine.advance() if a.status == "firing")
    return fired


def main(argv: Sequence[str] = ()) -> int:
    print(f"default anomaly rule grouped by service, {DAYS} days of noise: pages per seed")
    print(f"{'instances':>10} | pages")
    for instances, seeds in RUNS:
        print(f"{instances:>10} | {', '.join(str(pages(instances, s)) for s in range(seeds))}")
    print("rerun: uv run python -m benchmarks.group_noise")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
