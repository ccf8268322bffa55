"""`tocsin eval nab`: run the anomaly detector over NAB-format data and score it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from processors.evaluation.nab import PROFILES, best_threshold, prepare, raw_at
from processors.evaluation.runner import run_corpus, write_results
from schemas.anomaly import AnomalySpec


@click.group(name="eval")
def eval_() -> None:
    """Evaluate detectors on labelled data."""


@eval_.command()
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Directory of <category>/<name>.csv files.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where NAB-format results go: <out>/<category>/tocsin_<name>.csv",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="combined_windows.json; with it, print the NAB scores.",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="The fixed production threshold to report (default: the spec's).",
)
@click.option(
    "--detector",
    type=click.Choice(["likelihood", "holt_winters"]),
    default="likelihood",
    show_default=True,
    help="Which detector scores the files (the rest of the spec is the default).",
)
def nab(data: Path, out: Path, labels: Path | None, threshold: float | None, detector: str) -> None:
    """Online, one detector per file, rows in file order, no look-ahead."""
    spec = AnomalySpec.model_validate({"detector": detector})
    started = time.perf_counter()
    runs = run_corpus(data, spec)
    wall = time.perf_counter() - started
    write_results(runs, out)
    points = sum(len(r.scores) for r in runs)
    detector_s = sum(r.seconds for r in runs)
    click.echo(f"{len(runs)} files, {points:,} points -> {out}")
    click.echo(
        f"speed: {points / detector_s:,.0f} points per CPU-second (detector), "
        f"{points / wall:,.0f} points/s wall (with CSV parsing)"
    )
    click.echo(f"state per series: max {max(r.state_bytes for r in runs)} bytes")
    if labels is None:
        return
    windows = json.loads(labels.read_text())
    fixed = threshold if threshold is not None else spec.threshold
    click.echo(
        f"\n| {'profile':20} | {'score':>6} | {'threshold':>9} | {'windows':>9} | "
        f"{'FP':>5} | {'score @ ' + format(fixed, '.2f'):>12} | {'windows':>9} | {'FP':>5} |"
    )
    click.echo("|" + "|".join("-" * w for w in (22, 8, 11, 11, 7, 14, 11, 7)) + "|")
    for profile in PROFILES:
        files = [
            prepare(
                r.key, r.scores, r.timestamps, [(a, b) for a, b in windows.get(r.key, [])], profile
            )
            for r in runs
        ]
        best = best_threshold(files, profile)
        at = raw_at(files, fixed, profile)
        click.echo(
            f"| {profile.name:20} | {best.normalized:6.1f} | {best.threshold:9.4f} | "
            f"{best.detected_windows:>3}/{best.windows:<5} | {best.false_positives:5} | "
            f"{at.normalized:12.1f} | {at.detected_windows:>3}/{at.windows:<5} | "
            f"{at.false_positives:5} |"
        )
