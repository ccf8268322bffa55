"""`python -m benchmarks.faults [SCENARIO ...] [--quick]`: the fault soak (`make faults`).

Each scenario prints one row (scenario, trials, lost, duplicated, max latency, exits,
verdict, its own wall time, the command to rerun it) as it ends, then the whole table;
the exit code is non-zero when any scenario failed. ``--quick`` scales every scenario
down for a check on a busy machine; the full run is the figure of record.

Scenarios that use different components run at the same time, each lane in a process
of its own: the two broker outages and the cluster's rolling restart (one after the
other, on brokers of their own, which only they stop), the Slack outage (mostly
waiting), the hostile flood (at a lower CPU priority: it takes what the others leave
and needs no latency) and, one after another, the SIGKILL trials; then the storm
alone, whose target is a latency. Every check is the same as when a scenario runs
alone (``--serial``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from benchmarks.faults import (
    agents_kills,
    gateway_kills,
    hostile_soak,
    notifier_kills,
    processor_kills,
    rebalance,
    slack_outage,
    storm,
)
from benchmarks.faults.harness import Row, keep, table
from streams.broker.local import LocalBroker, port_of
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings

SCENARIOS = ("processor", "agents", "notifier", "gateway", "broker-outage", "cluster-roll",
             "frozen-node", "partitioned-node", "topics-fix", "rebalance", "slack-outage",
             "storm", "hostile")  # fmt: skip
OUTAGES = {"broker-outage-30s": "30s", "broker-outage-3min": "3min"}
PHASES = (
    (
        (
            "broker-outage-30s",
            "broker-outage-3min",
            "cluster-roll",
            "frozen-node",
            "partitioned-node",
            "topics-fix",
        ),
        # the rebalance after the Slack outage, which mostly waits: it failed only on a
        # busy machine, and the other lanes keep this one busy
        ("slack-outage", "rebalance"),
        ("hostile",),
        ("processor", "agents", "notifier", "gateway"),
    ),
    # the storm alone, once the rest is done: its 5 s paging target is a latency, and the
    # hostile flood shares the broker (not lowered by `nice`) with whatever runs beside it
    (("storm",),),
)
HOSTILE_NICE = 5
SCENARIO_ORDER = ("processor", "agents", "notifier", "gateway", *OUTAGES, "cluster-roll",
                  "frozen-node", "partitioned-node", "topics-fix", "rebalance",
                  "slack-outage", "storm", "hostile")  # fmt: skip


def broker_outage(bootstrap: str, tmp: Path, which: str, port: int) -> Row:
    """The broker stopped for 30 s or for 3 minutes under load, every worker left to
    ride it out: tests/faults/outage owns these scenarios (each starts a broker of its
    own on ``port`` to stop; the 3-minute one is marked `soak`); run here so they are in
    the table."""
    select = f"{which}_broker_outage"
    return _pytest_row(f"broker stop {which}", f"outage-{which}",
                       ["-m", "soak or not soak", "-k", select, "tests/faults/outage"],
                       {"TOCSIN_BOOTSTRAP_SERVERS": bootstrap,
                        "TOCSIN_OUTAGE_BROKER_PORT": str(port)}, tmp)  # fmt: skip


def cluster_roll(bootstrap: str, tmp: Path) -> Row:
    """A three-node cluster restarted node by node under load, then a node killed, then
    two (the quorum lost): tests/faults/cluster owns the scenario (a cluster of its own);
    its measurements (each phase's length, the longest unready stretch per worker, the
    gateway's answers per phase) go in the row's notes."""
    return _pytest_row("cluster roll, node kill, quorum loss", "cluster-roll",
                       ["-m", "soak or not soak", "-s",
                        "tests/faults/cluster/test_rolling_restart.py"],
                       {"TOCSIN_BOOTSTRAP_SERVERS": bootstrap}, tmp)  # fmt: skip


def frozen_node(bootstrap: str, tmp: Path) -> Row:
    """The busiest node of a three-node cluster frozen (SIGSTOP) under load until what
    arrived meanwhile is paged, then woken: tests/faults/cluster owns the scenario (a
    cluster of its own, after the roll's); how long the page took goes in the notes."""
    return _pytest_row("cluster node frozen", "frozen-node",
                       ["-m", "soak or not soak", "-s",
                        "tests/faults/cluster/test_frozen_node.py"],
                       {"TOCSIN_BOOTSTRAP_SERVERS": bootstrap}, tmp)  # fmt: skip


def partitioned_node(bootstrap: str, tmp: Path) -> Row:
    """A node of a three-node cluster cut off from the other two by iptables under load
    (the clients still reach it) until what arrived meanwhile is paged, then healed: the
    busiest node, the processor's transaction coordinator, the agents' group
    coordinator; and a worker restarted
    against a cut-off coordinator. tests/faults/cluster owns the scenarios; they need
    root, iptables and setpriv, and are skipped (0 trials) without them."""
    return _pytest_row("cluster node cut off", "partitioned-node",
                       ["-m", "soak or not soak", "-s",
                        "tests/faults/cluster/test_partitioned_node.py",
                        "tests/faults/cluster/test_coordinator_cut_off.py"],
                       {"TOCSIN_BOOTSTRAP_SERVERS": bootstrap}, tmp)  # fmt: skip


def topics_fix(bootstrap: str, tmp: Path) -> Row:
    """`tocsin topics fix` on a three-node cluster of its own: a changelog made with one
    copy gets a plan that Kafka's reassignment tool executes, and `topics check` is then
    clean (tests/faults/cluster; after the roll, so that two clusters never run at once)."""
    return _pytest_row("topics fix on a cluster", "topics-fix",
                       ["-m", "soak or not soak", "-s",
                        "tests/faults/cluster/test_topics_fix_cluster.py"],
                       {"TOCSIN_BOOTSTRAP_SERVERS": bootstrap}, tmp)  # fmt: skip


def _pytest_row(title: str, name: str, args: list[str], env: dict[str, str],
                tmp: Path) -> Row:  # fmt: skip
    rerun = "pytest -q " + " ".join(f"'{a}'" if " " in a else a for a in args)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, env={**os.environ, **env})  # fmt: skip
    (tmp / f"{name}.log").write_text(proc.stdout + proc.stderr)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    ran = proc.returncode != 5  # pytest's "no tests collected"
    notes = [summary if ran else "no test found"]
    notes += [line for line in proc.stdout.splitlines() if line.startswith("{")][:1]
    if proc.returncode not in (0, 5):
        notes += [line for line in proc.stdout.splitlines() if line.startswith("E ")][:8]
        kept = keep(name, (proc.stdout + proc.stderr).encode())
        notes.append(f"full output, every worker's log tail included: {kept}")
    passed = sum(int(w) for w, n in zip(summary.split(), summary.split()[1:], strict=False)
                 if n.startswith("passed") and w.isdigit())  # fmt: skip
    return Row(title, passed, 0, 0, None, 0, ran and proc.returncode == 0, rerun, notes)


def _args(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    ap.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    ap.add_argument("--quick", action="store_true", help="scaled down, for a busy machine")
    ap.add_argument("--serial", action="store_true", help="one scenario after another")
    ap.add_argument(
        "--trials", type=int, help="SIGKILL trials per worker kind (20); runs of the rebalance (60)"
    )
    ap.add_argument("--seconds", type=float, help="Slack outage length (600)")
    ap.add_argument("--alerts", type=int, help="storm size (100,000)")
    ap.add_argument("--requests", type=int, help="hostile requests (1,000,000)")
    ap.add_argument("--bootstrap", default=os.environ.get("TOCSIN_BOOTSTRAP_SERVERS",
                                                          "127.0.0.1:9092"))  # fmt: skip
    ap.add_argument("--outage-port", type=int, default=19292,
                    help="port of the broker the outages start and stop (their own)")  # fmt: skip
    ap.add_argument("--rows", type=Path, help=argparse.SUPPRESS)  # a lane: rows to this file
    return ap, ap.parse_args(argv)


def main(argv: list[str]) -> int:
    ap, args = _args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS) - set(OUTAGES)
    if unknown:
        ap.error(f"unknown scenario {', '.join(sorted(unknown))}")
    chosen: list[str] = []
    for s in args.scenarios or SCENARIOS:
        chosen += list(OUTAGES) if s == "broker-outage" else [s]
    if not broker_reachable(KafkaSettings(bootstrap_servers=args.bootstrap)):
        LocalBroker(port=port_of(args.bootstrap)).start()
    started = time.monotonic()
    if args.rows is not None or args.serial or len(chosen) == 1:
        rows = _run_here(args, chosen)
    else:
        rows = _run_lanes(argv, chosen)
    print("\n" + table(rows))
    failed = [r.scenario for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} scenarios passed in "
          f"{time.monotonic() - started:.0f}s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


def _run_here(args: argparse.Namespace, chosen: list[str]) -> list[Row]:
    """The chosen scenarios one after another in this process."""
    trials = args.trials or (4 if args.quick else 20)
    seconds = args.seconds or (40.0 if args.quick else 600.0)
    alerts = args.alerts or (10_000 if args.quick else 100_000)
    n = args.requests or (10_000 if args.quick else 1_000_000)
    b = args.bootstrap
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tocsin-faults-") as d:
        tmp = Path(d)
        runs: dict[str, Callable[[], Row]] = {
            "processor": lambda: processor_kills.run(b, trials, tmp),
            "agents": lambda: agents_kills.run(b, trials, tmp),
            "notifier": lambda: notifier_kills.run(b, trials, tmp),
            "gateway": lambda: gateway_kills.run(b, trials, tmp),
            "broker-outage-30s": lambda: broker_outage(b, tmp, "30s", args.outage_port),
            "broker-outage-3min": lambda: broker_outage(b, tmp, "3min", args.outage_port),
            "cluster-roll": lambda: cluster_roll(b, tmp),
            "frozen-node": lambda: frozen_node(b, tmp),
            "partitioned-node": lambda: partitioned_node(b, tmp),
            "topics-fix": lambda: topics_fix(b, tmp),
            "rebalance": lambda: rebalance.run(b, args.trials or (6 if args.quick else 60), tmp),
            "slack-outage": lambda: slack_outage.run(b, seconds, tmp),
            "storm": lambda: storm.run(b, alerts, tmp),
            "hostile": lambda: hostile_soak.run(b, n, tmp),
        }
        for name in chosen:
            row = _guard(name, runs[name])
            rows.append(row)
            _print(row)
            if args.rows is not None:
                with args.rows.open("a") as f:
                    f.write(json.dumps({"name": name, "row": asdict(row)}) + "\n")
    return rows


def _run_lanes(argv: list[str], chosen: list[str]) -> list[Row]:
    """Phase after phase, each lane of a phase in a process of its own, all at once;
    their rows in the usual order."""
    rows: dict[str, Row] = {}
    for phase in PHASES:
        lanes = [[s for s in lane if s in chosen] for lane in phase]
        rows |= _run_phase(argv, [lane for lane in lanes if lane])
    return [rows[s] for s in SCENARIO_ORDER if s in rows]


def _run_phase(argv: list[str], lanes: list[list[str]]) -> dict[str, Row]:
    passed_on = [a for a in argv if a not in SCENARIOS and a not in OUTAGES]
    with tempfile.TemporaryDirectory(prefix="tocsin-lanes-") as d:
        procs: list[tuple[list[str], Path, Path, subprocess.Popen[bytes]]] = []
        for i, lane in enumerate(lanes):
            rows_file, log = Path(d) / f"lane{i}.rows", Path(d) / f"lane{i}.log"
            cmd = [sys.executable, "-m", "benchmarks.faults", *lane, *passed_on,
                   "--rows", str(rows_file)]  # fmt: skip
            if lane == ["hostile"]:
                cmd = ["nice", "-n", str(HOSTILE_NICE), *cmd]
            procs.append((lane, rows_file, log, subprocess.Popen(
                cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)))  # fmt: skip
            print(f"lane {i}: {' '.join(lane)}", flush=True)
        for lane, _, log, proc in procs:
            proc.wait()
            print(f"\n--- lane {' '.join(lane)} (exit {proc.returncode}) ---", flush=True)
            print(log.read_text(errors="replace").split("\n\nscenario |")[0].strip(), flush=True)
        rows: dict[str, Row] = {}
        for lane, rows_file, _, proc in procs:
            lines = rows_file.read_text().splitlines() if rows_file.exists() else []
            for line in lines:
                doc = json.loads(line)
                rows[doc["name"]] = Row(**doc["row"])
            for s in lane:  # the lane itself died: its missing rows fail
                died = [f"its lane exited {proc.returncode} before it"]
                rows.setdefault(s, Row(s, 0, 0, 0, None, 0, False,
                                       f"python -m benchmarks.faults {s}", died))  # fmt: skip
    return rows


def _guard(name: str, fn: Callable[[], Row]) -> Row:
    """A scenario that raises is a failed row, not the end of the soak."""
    started = time.monotonic()
    try:
        row = fn()
    except Exception as exc:  # reported in the table
        row = Row(name, 0, 0, 0, None, 0, False, f"python -m benchmarks.faults {name}",
                  [f"{type(exc).__name__}: {str(exc)[:600]}"])  # fmt: skip
    row.wall = time.monotonic() - started
    return row


def _print(row: Row) -> None:
    print("\n" + table([row]), flush=True)
    for note in row.notes:
        print(f"    {note}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
