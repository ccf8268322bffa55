"""How a threshold, or an alerting rule, is chosen on training files so that it transfers.

The training files give each candidate (a NAB threshold, or a rule among the candidate
rules) a raw NAB score per file. The argmax of their sum is what NAB's sweeper does; on
the dev split it is a flat plateau of marginal detections, and which end of it wins is
decided by a window or two of whichever files are in training. The other procedures
read the same table differently:

- "bagged": the argmax on RESAMPLES bootstrap resamples of the training files (files,
  not points, are resampled: a file's points are not independent), seeded; the
  candidate at QUANTILE of the resampled choices in rarity order (0.5: the median;
  under 0.5: the rarer side, fewer false positives);
- "plateau": the rarest candidate whose summed score is within one missed window
  (the profile's fn) of the best: the training files cannot tell those apart, and the
  rarer one pages less on a kind of series they do not hold;
- "plateau-se": the rarest candidate whose shortfall against the best is within one
  bootstrap standard error of that shortfall (paired over resampled files: the
  one-standard-error rule of model selection);
- "per-file" / "per-category": the argmax of the mean of each file's (category's)
  normalised score, so files with many windows or many points (one category's long
  series) do not decide alone; a file or category without windows counts as one window.

Candidates are ordered rarest first (the highest threshold; the rule that fires least on
the training files), and every tie goes to the rarer. The procedure is a module constant,
so a benchmark `Variant` switches it (`benchmarks/nab_choice.py` applies a variant's
overrides while it chooses). By default the threshold is NAB's argmax and the rule is
chosen by "plateau"; docs/anomaly-evaluation.md ("Variants tried: how the threshold is chosen")
says why, with every procedure's out-of-fold figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from processors.evaluation.nab import FileRows, Profile, best_threshold, raw_at

THRESHOLD = "argmax"  # how the NAB threshold of each profile is chosen
# how the alerting rule is chosen among the candidates: a rule that pages more often for
# less than a window's worth on the training files is not chosen
RULE = "plateau"
# resamples of the training files for "bagged" and "plateau-se"; a fixed seed so a rerun
# chooses the same (the median's choice does not move between seeds on the dev split)
RESAMPLES = 200
SEED = 1
QUANTILE = 0.5
# no threshold under this is a candidate outside "argmax": 0.1 is a surprise of about 1 in
# 6 points (D = 0.78 decades), far under any threshold a sweep has chosen (0.26 and up),
# and the table keeps ~1,000 candidates instead of one per scored point
FLOOR = 0.1
METHODS = ("argmax", "bagged", "plateau", "plateau-se", "per-file", "per-category")


@dataclass(frozen=True)
class Table:
    """Training raw scores: one row per file, one column per candidate, rarest first."""

    raw: list[list[float]]
    windows: list[int]
    groups: list[str]  # each file's category


def choose(table: Table, profile: Profile, how: str) -> int:
    """The index of the candidate `how` chooses (0 is the rarest)."""
    files = range(len(table.raw))
    if how == "argmax":
        return _argmax(_sums(table, [1.0] * len(table.raw)))
    if how == "plateau":
        sums = _sums(table, [1.0] * len(table.raw))
        best = max(sums)
        return next(c for c, s in enumerate(sums) if s >= best - profile.fn - 1e-9)
    if how == "per-file":
        span = profile.tp + profile.fn
        return _argmax(_sums(table, [1.0 / (max(w, 1) * span) for w in table.windows]))
    if how == "per-category":
        held: dict[str, int] = {}
        for g, w in zip(table.groups, table.windows, strict=True):
            held[g] = held.get(g, 0) + w
        span = profile.tp + profile.fn
        return _argmax(_sums(table, [1.0 / (max(held[g], 1) * span) for g in table.groups]))
    rng = random.Random(SEED)
    resamples = [[rng.randrange(len(table.raw)) for _ in files] for _ in range(RESAMPLES)]
    if how == "bagged":
        chosen = sorted(
            _argmax(_sums(table, [float(r.count(f)) for f in files])) for r in resamples
        )
        return chosen[min(int(QUANTILE * len(chosen)), len(chosen) - 1)]
    if how == "plateau-se":
        sums = _sums(table, [1.0] * len(table.raw))
        top = _argmax(sums)
        gaps = [[row[top] - x for x in row] for row in table.raw]
        shortfalls = [
            _sums(Table(gaps, table.windows, table.groups), [float(r.count(f)) for f in files])
            for r in resamples
        ]
        for c, s in enumerate(sums):
            se = _sd([b[c] for b in shortfalls])
            if sums[top] - s <= se + 1e-9:
                return c
    raise ValueError(f"unknown choice procedure {how!r}; expected one of {METHODS}")


def _sums(table: Table, weights: Sequence[float]) -> list[float]:
    sums = [0.0] * len(table.raw[0])
    for row, w in zip(table.raw, weights, strict=True):
        if w:
            for c, x in enumerate(row):
                sums[c] += w * x
    return sums


def _argmax(sums: Sequence[float]) -> int:
    """The first (rarest) of the best: ties go to the rarer candidate, as NAB's sweeper."""
    best = max(sums)
    return next(c for c, s in enumerate(sums) if s >= best - 1e-12)


def _sd(xs: Sequence[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1))


def threshold_table(
    files: Sequence[FileRows], profile: Profile, floor: float = FLOOR
) -> tuple[list[float], Table]:
    """Every distinct training score at or over `floor` (and never firing) as a candidate.

    A file's raw score at threshold t is the same as at the lowest of these at or over t,
    so the table holds each file's whole curve above the floor, rarest first.
    """
    grid = [math.inf, *sorted({s for f in files for s in f.scores if s >= floor}, reverse=True)]
    return grid, Table(
        [_curve(f, grid, profile.fn) for f in files],
        [f.n_windows for f in files],
        [f.name.split("/")[0] for f in files],
    )


def _curve(f: FileRows, grid: Sequence[float], fn: float) -> list[float]:
    """The file's raw score at each threshold of the descending grid (as NAB's sweeper)."""
    rows = sorted(
        (r for r in zip(f.scores, f.weights, f.window_of, strict=True) if r[0] >= grid[-1]),
        key=lambda r: -r[0],
    )
    best = [-math.inf] * f.n_windows
    raw = -fn * f.n_windows
    out = []
    i = 0
    for t in grid:
        while i < len(rows) and rows[i][0] >= t:
            _, w, win = rows[i]
            if win < 0:
                raw += w
            else:
                old = best[win]
                new = max(old, w)
                raw += new - (old if old != -math.inf else -fn)
                best[win] = new
            i += 1
        out.append(raw)
    return out


def choose_threshold(files: Sequence[FileRows], profile: Profile) -> float:
    """The threshold of `profile` chosen on the training files by THRESHOLD."""
    if THRESHOLD == "argmax":
        return best_threshold(files, profile).threshold
    grid, table = threshold_table(files, profile)
    return grid[choose(table, profile, THRESHOLD)]


def rule_table(
    candidates: Sequence[Sequence[FileRows]], profile: Profile
) -> tuple[list[int], Table]:
    """Alert files per candidate rule (scores 0 / 1) as a table; the order, rarest first.

    A rule is rarer than another when it fires less often on the training files; ties keep
    the candidates' order.
    """
    fired = [sum(1 for f in files for s in f.scores if s >= 0.5) for files in candidates]
    order = sorted(range(len(candidates)), key=lambda c: fired[c])
    first = candidates[0]
    raw = [[raw_at([candidates[c][f]], 0.5, profile).raw for c in order] for f in range(len(first))]
    return order, Table(raw, [f.n_windows for f in first], [f.name.split("/")[0] for f in first])


def choose_rule(candidates: Sequence[Sequence[FileRows]], profile: Profile) -> int:
    """The index (into `candidates`) of the rule RULE chooses on the training files."""
    if RULE == "argmax":
        # the first of the best in the candidates' own order (thresholds, then debouncing)
        raws = [raw_at(files, 0.5, profile).raw for files in candidates]
        return raws.index(max(raws))
    order, table = rule_table(candidates, profile)
    return order[choose(table, profile, RULE)]
