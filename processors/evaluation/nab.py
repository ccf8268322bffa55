"""The Numenta Anomaly Benchmark scoring method, as published.

Per file: a probation period is not scored; each row gets a weight from a
scaled sigmoid of its position relative to the anomaly windows (early in a
window is worth most, far from any window costs most); a window counts once,
with its best detection, or -fnWeight if missed. One threshold for the whole
corpus is chosen by sweeping every distinct score, and the raw score is
normalised between the null detector (never fires) and a perfect one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def sigmoid(y: float) -> float:
    """NAB's scaled sigmoid S(y) = 2/(1+e^(5y)) - 1, -1 from y = 3 on (as nab/sweeper.py)."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass(slots=True)
class FileRows:
    """One file's scored rows: score, weight, and the window (or -1) of each row."""

    name: str
    scores: list[float]
    weights: list[float]
    window_of: list[int]
    n_windows: int


def probation_rows(n: int) -> int:
    """NAB's probation: the first 15% of a file (at most 750 rows) is not scored."""
    return min(math.floor(0.15 * n), 750)


# NAB's labeller gives the anomalies of a file a tenth of its rows, shared equally.
WINDOW_SHARE = 0.10


def label_windows(timestamps: Sequence[str], labels: Sequence[int]) -> list[tuple[str, str]]:
    """Windows from per-row labels by NAB's labelling rule (nab/labeler.py).

    NAB centres a window of int(0.10 * rows / anomalies) rows on each labelled point.
    Here a run of consecutive labelled rows is one anomaly, and its window is the run
    widened by half that length on each side (a one-row run gets exactly NAB's
    window). As in NAB, a window that starts inside the probation period is dropped and
    overlapping windows are merged.
    """
    n = len(labels)
    runs: list[list[int]] = []
    for i, labelled in enumerate(labels):
        if labelled and runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        elif labelled:
            runs.append([i, i])
    if not runs:
        return []
    half = int(WINDOW_SHARE * n / len(runs)) // 2
    probation = probation_rows(n)
    merged: list[list[int]] = []
    for first, last in runs:
        front, back = max(first - half, 0), min(last + half, n - 1)
        if front < probation:
            continue
        if merged and front <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], back)
        else:
            merged.append([front, back])
    return [(timestamps[a], timestamps[b]) for a, b in merged]


def window_rows(timestamps: Sequence[str], windows: Sequence[tuple[str, str]]) -> list[list[int]]:
    """Row indices inside each [start, end] window, in file order, as NAB's sweeper walks.

    A window opens at the first row (after the previous window closed) whose timestamp
    is its start and closes at the next row whose timestamp is its end, so duplicate or
    out-of-order rows between the two belong to it. Where a bound is not a timestamp of
    the file, the first row at or after the start opens it and the window runs while
    rows stay at or before the end.
    """
    norm = [t.replace("T", " ")[:19] for t in timestamps]
    n = len(norm)
    out: list[list[int]] = []
    pos = 0
    for start, end in sorted(windows):
        s, e = start.replace("T", " ")[:19], end.replace("T", " ")[:19]
        first = next((i for i in range(pos, n) if norm[i] == s), None)
        if first is None:
            first = next((i for i in range(pos, n) if norm[i] >= s), n)
        last = next((i for i in range(first, n) if norm[i] == e), None)
        if last is None:
            last = first - 1
            while last + 1 < n and s <= norm[last + 1] <= e:
                last += 1
        out.append(list(range(first, last + 1)))
        pos = max(pos, last + 1)
    return out


def prepare(
    name: str,
    scores: Sequence[float],
    timestamps: Sequence[str],
    windows: Sequence[tuple[str, str]],
    profile: Profile,
) -> FileRows:
    n = len(scores)
    probation = probation_rows(n)
    rows_in = window_rows(timestamps, windows)
    window_of = [-1] * n
    weights = [0.0] * n
    for w, rows in enumerate(rows_in):
        if not rows:
            continue
        right, width = max(rows), len(rows)
        for i in rows:
            window_of[i] = w
            weights[i] = profile.tp * sigmoid(-(right - i + 1) / width) / sigmoid(-1.0)
    # outside windows: cost grows with the distance after the last window that ended
    last_end: tuple[int, int] | None = None
    ends = sorted((max(r), len(r)) for r in rows_in if r)
    k = 0
    for i in range(n):
        while k < len(ends) and ends[k][0] < i:
            last_end = ends[k]
            k += 1
        if window_of[i] >= 0:
            continue
        if last_end is None:
            weights[i] = -profile.fp
        else:
            right, width = last_end
            weights[i] = profile.fp * sigmoid(abs(right - i) / max(width - 1, 1))
    keep = range(probation, n)
    counted = {window_of[i] for i in keep if window_of[i] >= 0}
    # windows that lie wholly in probation are not scored at all
    renumber = {w: j for j, w in enumerate(sorted(counted))}
    return FileRows(
        name=name,
        scores=[scores[i] for i in keep],
        weights=[weights[i] for i in keep],
        window_of=[renumber.get(window_of[i], -1) if window_of[i] >= 0 else -1 for i in keep],
        n_windows=len(renumber),
    )


@dataclass(slots=True)
class Result:
    profile: str
    threshold: float
    raw: float
    normalized: float
    detected_windows: int
    windows: int
    false_positives: int
    per_file: dict[str, float] = field(default_factory=dict)


def raw_at(files: Sequence[FileRows], threshold: float, profile: Profile) -> Result:
    raw = 0.0
    detected = fps = 0
    per_file: dict[str, float] = {}
    for f in files:
        best = [-math.inf] * f.n_windows
        file_raw = 0.0
        for s, w, win in zip(f.scores, f.weights, f.window_of, strict=True):
            if s < threshold:
                continue
            if win >= 0:
                best[win] = max(best[win], w)
            else:
                file_raw += w
                fps += 1
        for b in best:
            if b == -math.inf:
                file_raw -= profile.fn
            else:
                file_raw += b
                detected += 1
        per_file[f.name] = file_raw
        raw += file_raw
    windows = sum(f.n_windows for f in files)
    return Result(
        profile.name,
        threshold,
        raw,
        normalize(raw, windows, profile),
        detected,
        windows,
        fps,
        per_file,
    )


def normalize(raw: float, windows: int, profile: Profile) -> float:
    perfect, null = windows * profile.tp, -windows * profile.fn
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def best_threshold(files: Sequence[FileRows], profile: Profile) -> Result:
    """Sweep every distinct score (descending), updating the raw score incrementally."""
    windows = sum(f.n_windows for f in files)
    rows: list[tuple[float, int, int, float]] = []  # score, file, window, weight
    for fi, f in enumerate(files):
        for s, w, win in zip(f.scores, f.weights, f.window_of, strict=True):
            rows.append((s, fi, win, w))
    rows.sort(key=lambda r: -r[0])
    best_val: list[list[float]] = [[-math.inf] * f.n_windows for f in files]
    raw = -windows * profile.fn  # nothing detected yet
    best_raw, best_t = raw, math.inf
    i = 0
    while i < len(rows):
        t = rows[i][0]
        while i < len(rows) and rows[i][0] == t:
            _, fi, win, w = rows[i]
            if win < 0:
                raw += w
            else:
                old = best_val[fi][win]
                new = max(old, w)
                raw += new - (old if old != -math.inf else -profile.fn)
                best_val[fi][win] = new
            i += 1
        if raw > best_raw:
            best_raw, best_t = raw, t
    return raw_at(files, best_t, profile)
