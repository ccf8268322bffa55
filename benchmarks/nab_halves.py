"""NAB dev split: full-corpus scores, the fixed-threshold score and the split-half checks.

The halves are the overfitting check of docs/anomaly-evaluation.md: the 31 files in sorted
order split into alternate files (A: even index, B: odd) and into files whose index
i has i mod 4 in {0, 1} / {2, 3}; each half is swept for its own threshold
(standard profile). A change worth keeping gains on most halves.

`--per-point` adds the ablation of the per-unit-of-time rating (processors/anomaly/
timescale.py): the same detector with its scores rated per point, as before 2026-12-05,
and a paired bootstrap over files (200 resamples of the 31 files with replacement, each
swept on its own): how often and by how much the default beats the ablation.

`--alerts` also scores what would page: each firing transition of the rule's k-of-n
debouncing (default AnomalySpec: 0.3, 2 of 5, warm-up 150) as a detection of 1.0.

Rerun: `uv run python -m benchmarks.nab_halves [--per-file] [--per-point] [--alerts]`
(TOCSIN_NAB_DIR defaults to ../shared/datasets/nab-dev).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from processors.anomaly import AnomalySeries, timescale
from processors.evaluation.nab import PROFILES, FileRows, best_threshold, prepare, raw_at
from processors.evaluation.runner import read_series
from schemas.anomaly import AnomalySpec

DATA = Path(os.environ.get("TOCSIN_NAB_DIR", "../shared/datasets/nab-dev"))
FIXED = 0.30

Corpus = list[tuple[str, list[str], list[float], list[datetime]]]


def load(data: Path = DATA) -> Corpus:
    out: Corpus = []
    for p in sorted((data / "data").glob("*/*.csv")):
        ts, values = read_series(p)
        ats = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in ts]
        out.append((f"{p.parent.name}/{p.name}", ts, values, ats))
    return out


def score_corpus(corpus: Corpus, spec: AnomalySpec) -> tuple[list[list[float]], float]:
    """Scores per file, and detector points per CPU-second."""
    all_scores: list[list[float]] = []
    cpu = 0.0
    for _, _, values, ats in corpus:
        d = AnomalySeries(spec)
        update = d.update
        started = time.process_time()
        scores = [update(v, at).score for v, at in zip(values, ats, strict=True)]
        cpu += time.process_time() - started
        all_scores.append(scores)
    points = sum(len(s) for s in all_scores)
    return all_scores, points / cpu if cpu else 0.0


@contextmanager
def rated_per_point() -> Iterator[None]:
    """The ablation, for both detectors: the step is still learned, but shifts nothing."""
    decades = timescale._decades
    timescale._decades = lambda log_step: 0.0
    try:
        yield
    finally:
        timescale._decades = decades


def paired_bootstrap(
    corpus: Corpus,
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
    windows: dict[str, list[list[str]]],
    resamples: int = 200,
) -> list[float]:
    """Standard score of `a` minus that of `b` on resamples of the files (seed 1)."""
    standard = PROFILES[0]

    def files(scores: Sequence[Sequence[float]]) -> list[FileRows]:
        return [
            prepare(key, s, ts, [(x, y) for x, y in windows.get(key, [])], standard)
            for (key, ts, _, _), s in zip(corpus, scores, strict=True)
        ]

    fa, fb = files(a), files(b)
    rng = random.Random(1)
    diffs = []
    for _ in range(resamples):
        pick = [rng.randrange(len(fa)) for _ in fa]
        diffs.append(
            best_threshold([fa[i] for i in pick], standard).normalized
            - best_threshold([fb[i] for i in pick], standard).normalized
        )
    return sorted(diffs)


def alert_scores(corpus: Corpus, spec: AnomalySpec) -> list[list[float]]:
    """1.0 where the series' alert fires, else 0.0: the pages, scored as NAB detections."""
    out = []
    for _, _, values, ats in corpus:
        d = AnomalySeries(spec)
        out.append(
            [
                1.0 if d.update(v, at).transition == "firing" else 0.0
                for v, at in zip(values, ats, strict=True)
            ]
        )
    return out


def report(
    corpus: Corpus, scores: Sequence[Sequence[float]], windows: dict[str, list[list[str]]]
) -> dict[str, float]:
    out: dict[str, float] = {}
    prepared: dict[str, list[FileRows]] = {}
    for profile in PROFILES:
        files = [
            prepare(key, s, ts, [(a, b) for a, b in windows.get(key, [])], profile)
            for (key, ts, _, _), s in zip(corpus, scores, strict=True)
        ]
        prepared[profile.name] = files
        best = best_threshold(files, profile)
        out[profile.name] = best.normalized
        if profile.name == "standard":
            out["threshold"] = best.threshold
            out["windows"] = best.detected_windows
            out["fp"] = best.false_positives
            at = raw_at(files, FIXED, profile)
            out["fixed"] = at.normalized
            out["fixed_windows"] = at.detected_windows
            out["fixed_fp"] = at.false_positives
    std = prepared["standard"]
    standard = PROFILES[0]
    halves = {
        "A": [f for i, f in enumerate(std) if i % 2 == 0],
        "B": [f for i, f in enumerate(std) if i % 2 == 1],
        "C": [f for i, f in enumerate(std) if i % 4 in (0, 1)],
        "D": [f for i, f in enumerate(std) if i % 4 in (2, 3)],
    }
    for name, files in halves.items():
        out[name] = best_threshold(files, standard).normalized
    return out


def line(label: str, r: dict[str, float], speed: float | None = None) -> str:
    s = (
        f"{label:40} std {r['standard']:5.1f} lowFP {r['reward_low_FP_rate']:5.1f} "
        f"lowFN {r['reward_low_FN_rate']:5.1f} | t {r['threshold']:.3f} "
        f"win {r['windows']:.0f} fp {r['fp']:.0f} | @0.30 {r['fixed']:5.1f} "
        f"({r['fixed_windows']:.0f}/{r['fixed_fp']:.0f}) | A/B {r['A']:5.1f} / {r['B']:5.1f} "
        f"C/D {r['C']:5.1f} / {r['D']:5.1f}"
    )
    return s + (f" | {speed:,.0f} pts/CPU-s" if speed else "")


def main(argv: Sequence[str] = ()) -> int:
    if not (DATA / "data").is_dir():
        print(f"NAB data not found under {DATA} (set TOCSIN_NAB_DIR)")
        return 1
    windows = json.loads((DATA / "labels" / "combined_windows.json").read_text())
    corpus = load()
    for detector in ("likelihood",) if "--holt-winters" not in argv else ("holt_winters",):
        spec = AnomalySpec.model_validate({"detector": detector})
        scores, speed = score_corpus(corpus, spec)
        print(line(detector, report(corpus, scores, windows), speed))
        if "--per-file" in argv:
            files = [
                prepare(key, s, ts, [(a, b) for a, b in windows.get(key, [])], PROFILES[0])
                for (key, ts, _, _), s in zip(corpus, scores, strict=True)
            ]
            t = best_threshold(files, PROFILES[0]).threshold
            at = raw_at(files, t, PROFILES[0])
            for key, raw in at.per_file.items():
                print(f"  {raw:7.2f}  {key}")
        if "--alerts" in argv:
            print(
                line(f"{detector}, its alerts", report(corpus, alert_scores(corpus, spec), windows))
            )
        if "--per-point" in argv:
            with rated_per_point():
                flat, speed = score_corpus(corpus, spec)
            print(line(f"{detector}, rated per point", report(corpus, flat, windows), speed))
            d = paired_bootstrap(corpus, scores, flat, windows)
            n = len(d)
            print(
                f"bootstrap over files, per unit of time minus per point: mean "
                f"{sum(d) / n:+.2f}, 90% of resamples in [{d[n // 20]:+.2f}, "
                f"{d[n - 1 - n // 20]:+.2f}], better in {sum(x > 0 for x in d) / n:.0%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
