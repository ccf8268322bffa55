"""Run a detector online over NAB-format CSV files and score the results."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from processors.anomaly import AnomalySeries
from schemas.anomaly import AnomalySpec


@dataclass
class FileRun:
    key: str  # <category>/<name>.csv
    timestamps: list[str]
    values: list[float]
    scores: list[float]
    seconds: float  # CPU seconds in the detector (time.process_time: the cores are shared)
    state_bytes: int


def read_series(path: Path) -> tuple[list[str], list[float]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [r["timestamp"] for r in rows], [float(r["value"]) for r in rows]


def run_file(path: Path, key: str, spec: AnomalySpec) -> FileRun:
    timestamps, values = read_series(path)
    detector = AnomalySeries(spec)
    scores: list[float] = []
    started = time.process_time()
    for ts, v in zip(timestamps, values, strict=True):
        at = datetime.fromisoformat(ts).replace(tzinfo=UTC)
        scores.append(detector.update(v, at).score)
    elapsed = time.process_time() - started
    return FileRun(key, timestamps, values, scores, elapsed, len(detector.to_bytes()))


def run_corpus(data: Path, spec: AnomalySpec) -> list[FileRun]:
    files = sorted(p for p in data.glob("*/*.csv"))
    return [run_file(p, f"{p.parent.name}/{p.name}", spec) for p in files]


def write_results(runs: list[FileRun], out: Path) -> None:
    for run in runs:
        category, name = run.key.split("/", 1)
        target = out / category / f"tocsin_{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "value", "anomaly_score"])
            for ts, v, s in zip(run.timestamps, run.values, run.scores, strict=True):
                w.writerow([ts, repr(v), f"{s:.6f}"])
