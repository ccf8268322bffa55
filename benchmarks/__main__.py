"""Run the benchmarks: every benchmarks/bench_*.py, or the names given."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    chosen = [n for n in names if not argv or n.removeprefix("bench_") in argv or n in argv]
    failed = 0
    for name in chosen:
        print(f"\n=== {name} (rerun: uv run python -m benchmarks {name.removeprefix('bench_')})")
        started = time.monotonic()
        module = importlib.import_module(f"benchmarks.{name}")
        code = module.main()
        failed += 1 if code else 0
        print(f"--- {name}: {'ok' if not code else 'FAILED'} in {time.monotonic() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
