"""Anomaly detection quality and speed on the NAB development split.

Rerun: `uv run python -m benchmarks nab` (same as `tocsin eval nab` on ../shared).
`uv run python -m benchmarks nab --cv [...]`: the out-of-sample figures (benchmarks/nab_cv.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("TOCSIN_NAB_DIR", "../shared/datasets/nab-dev"))


def main() -> int:
    if "--cv" in sys.argv:
        from benchmarks import nab_cv

        args = sys.argv[sys.argv.index("--cv") + 1 :]
        return nab_cv.main(args)
    if not (DATA / "data").is_dir():
        print(f"NAB data not found under {DATA} (set TOCSIN_NAB_DIR)")
        return 1
    print(f"machine: {os.cpu_count()} cores; one detector per file, online, default AnomalySpec")
    print("(speed is detector CPU time, time.process_time: the 2 cores are shared)")
    rc = 0
    for detector in ("likelihood", "holt_winters"):
        print(f"\n## detector: {detector}")
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "streams.cli.main", "eval", "nab", "--data",
                   str(DATA / "data"), "--out", out, "--labels",
                   str(DATA / "labels" / "combined_windows.json"),
                   "--detector", detector]  # fmt: skip
            rc |= subprocess.call(cmd)
    print("\nrerun: uv run python -m benchmarks nab")
    return rc
