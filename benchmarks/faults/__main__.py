"""`python -m benchmarks.faults [SCENARIO ...] [--quick]`: the fault soak (`make faults`).

Each scenario prints one row (scenario, trials, lost, duplicated, max latency, exits,
verdict, the command to rerun it) as it ends, then the whole table; the exit code is
non-zero when any scenario failed. ``--quick`` scales every scenario down for a check
on a busy machine; the full run is the figure of record.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.faults import (
    agents_kills,
    gateway_kills,
    hostile_soak,
    notifier_kills,
    processor_kills,
    slack_outage,
    storm,
)
from benchmarks.faults.harness import Row, table
from streams.broker.local import LocalBroker, port_of
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings

SCENARIOS = ("processor", "agents", "notifier", "gateway", "broker-outage", "slack-outage",
             "storm", "hostile")  # fmt: skip


def broker_outages(bootstrap: str, tmp: Path) -> Row:
    """The broker stopped for 30 s and for 3 minutes under load, every worker left to
    ride it out: tests/faults/outage owns these scenarios (each starts a broker of its
    own to stop; the 3-minute one is marked `soak`); run here so they are in the table."""
    rerun = "pytest -m 'soak or not soak' tests/faults/outage -q"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "soak or not soak", "-q",
                           "-p", "no:cacheprovider", "tests/faults/outage"],
                          capture_output=True, text=True,
                          env={**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": bootstrap})  # fmt: skip
    (tmp / "soak-tests.log").write_text(proc.stdout + proc.stderr)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    ran = proc.returncode != 5  # pytest's "no tests collected"
    notes = [summary if ran else "no outage test found",
             f"{time.monotonic() - started:.0f}s"]  # fmt: skip
    passed = sum(int(w) for w, n in zip(summary.split(), summary.split()[1:], strict=False)
                 if n.startswith("passed") and w.isdigit())  # fmt: skip
    return Row("broker stops 30 s, 3 min", passed, 0, 0, None, 0, ran and proc.returncode == 0,
               rerun, notes)  # fmt: skip


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    ap.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    ap.add_argument("--quick", action="store_true", help="scaled down, for a busy machine")
    ap.add_argument("--trials", type=int, help="SIGKILL trials per worker kind (20)")
    ap.add_argument("--seconds", type=float, help="Slack outage length (600)")
    ap.add_argument("--alerts", type=int, help="storm size (100,000)")
    ap.add_argument("--requests", type=int, help="hostile requests (1,000,000)")
    ap.add_argument("--bootstrap", default=os.environ.get("TOCSIN_BOOTSTRAP_SERVERS",
                                                          "127.0.0.1:9092"))  # fmt: skip
    args = ap.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if not args.scenarios or s in args.scenarios]
    trials = args.trials or (4 if args.quick else 20)
    seconds = args.seconds or (40.0 if args.quick else 600.0)
    alerts = args.alerts or (10_000 if args.quick else 100_000)
    n = args.requests or (10_000 if args.quick else 1_000_000)
    if not broker_reachable(KafkaSettings(bootstrap_servers=args.bootstrap)):
        LocalBroker(port=port_of(args.bootstrap)).start()
    b = args.bootstrap
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tocsin-faults-") as d:
        tmp = Path(d)
        runs: dict[str, Callable[[], Row]] = {
            "processor": lambda: processor_kills.run(b, trials, tmp),
            "agents": lambda: agents_kills.run(b, trials, tmp),
            "notifier": lambda: notifier_kills.run(b, trials, tmp),
            "gateway": lambda: gateway_kills.run(b, trials, tmp),
            "broker-outage": lambda: broker_outages(b, tmp),
            "storm": lambda: storm.run(b, alerts, tmp),
            "hostile": lambda: hostile_soak.run(b, n, tmp),
        }
        # the Slack outage is mostly waiting: it runs beside the others
        outage: list[Row] = []
        beside = None
        if "slack-outage" in chosen:

            def slack() -> None:
                outage.append(_guard("slack-outage", lambda: slack_outage.run(b, seconds, tmp)))

            beside = threading.Thread(target=slack, daemon=True)
            beside.start()
        for name in chosen:
            if name == "slack-outage":
                continue
            row = _guard(name, runs[name])
            rows.append(row)
            _print(row)
        if beside is not None:
            beside.join()
            rows += outage
            _print(outage[0])
    print("\n" + table(rows))
    failed = [r.scenario for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} scenarios passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


def _guard(name: str, fn: Callable[[], Row]) -> Row:
    """A scenario that raises is a failed row, not the end of the soak."""
    started = time.monotonic()
    try:
        row = fn()
    except Exception as exc:  # reported in the table
        row = Row(name, 0, 0, 0, None, 0, False, f"python -m benchmarks.faults {name}",
                  [f"{type(exc).__name__}: {str(exc)[:600]}"])  # fmt: skip
    row.notes.append(f"took {time.monotonic() - started:.0f}s")
    return row


def _print(row: Row) -> None:
    print("\n" + table([row]), flush=True)
    for note in row.notes:
        print(f"    {note}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
