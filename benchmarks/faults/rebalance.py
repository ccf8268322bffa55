"""The agents' rebalance, again and again: a second worker joins and takes over groups.

`tests/integration/agents/test_agents_rebalance.py` (in `make test`) runs it once. A
race in faust's handling of a new changelog made it fail about once in thirty to sixty
runs, and only with the machine busy, so here it runs `trials` times, three copies at
a time, each copy a pytest of its own on the shared broker. A run that fails keeps its
whole output under `.faults/`, the workers' logs included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.faults.harness import Row, keep

TEST = "tests/integration/agents/test_agents_rebalance.py"
AT_ONCE = 3


def run(bootstrap: str, trials: int, tmp: Path) -> Row:
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": bootstrap}
    passed, failures, worst = 0, [], 0.0
    for start in range(0, trials, AT_ONCE):
        copies = []
        for i in range(start, min(start + AT_ONCE, trials)):
            base = tmp / f"rebalance-{i}"
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   f"--basetemp={base}", TEST]  # fmt: skip
            copies.append((i, time.monotonic(), subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)))  # fmt: skip
        for i, began, proc in copies:
            out, _ = proc.communicate()
            worst = max(worst, time.monotonic() - began)
            if proc.returncode == 0:
                passed += 1
                continue
            logs = sorted((tmp / f"rebalance-{i}").rglob("agents.log"))
            kept = keep(f"rebalance-{i}", out + b"".join(
                b"\n--- %s ---\n%s" % (str(p).encode(), p.read_bytes()) for p in logs))  # fmt: skip
            failures.append(f"run {i + 1} failed: {kept}")
    notes = [f"{passed} of {trials} runs passed, {AT_ONCE} at a time; slowest run {worst:.0f} s",
             *failures[:8]]  # fmt: skip
    rerun = f"python -m benchmarks.faults rebalance --trials {trials}"
    return Row("agents rebalance", trials, 0, 0, None, 0, not failures, rerun, notes)
