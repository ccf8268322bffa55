"""A learned combination of the likelihood detector's per-point evidence, fitted per fold.

Each scored point's features (`likelihood.RECORD`): the largest of the three calibrated
surprises in decades (what the detector scores today), the forecast's, the value
novelty's, the value density's and the run's decades, the sign of the forecast error,
the largest surprise's peak over the last two episode stretches, log10 of the series'
age, and the per-time shift. A logistic regression over them is fitted on the training
files only: positives are the points inside a labelled window, each weighted by NAB's
reward for a detection there and each window's points summing to 1 (a window is found
once); negatives the points outside windows after probation, weighted by NAB's cost of
a false positive there (0.11 a point at the standard profile). The fitted model is
turned into decades of the largest surprise (its coefficients divided by the largest
surprise's), and its offset is set so that the training points are rated 1 in 1,000
or rarer as often as by the largest surprise alone: a threshold of 0.30 keeps its
meaning for the rules and the noise budget.

`benchmarks/nab_cv.py` calls `fit` once per fold with the training files and scores
every file with the weights it returns (`likelihood.WEIGHTS`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nab_halves import Corpus
from processors.anomaly import AnomalySeries, likelihood
from processors.anomaly.calibration import PEAK_MARGIN, SETTLE
from processors.evaluation.nab import PROFILES, prepare, probation_rows
from schemas.anomaly import AnomalySpec

STANDARD = PROFILES[0]
N_EXTRA = 7  # forecast, novelty, density, run decades, sign, recent peak, log10 age
EVIDENCE = (0, 1, 2, 3)  # the calibrated surprises only
RIDGE = 1.0  # on standardised features, against a total training weight of ~tens
RATE_DECADES = 3.0  # the offset keeps the share of points at 1 in 1,000 or rarer

_features: dict[str, list[np.ndarray]] = {}


def _key(corpus: Corpus) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(likelihood.__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    h.update(json.dumps([key for key, *_ in corpus]).encode())
    return h.hexdigest()[:16]


def features(corpus: Corpus) -> list[np.ndarray]:
    """Per file, one row of features per point from SETTLE on (the points scored)."""
    key = _key(corpus)
    if key not in _features:
        out = []
        spec = AnomalySpec.model_validate({"warm_up": 0})
        for _, _, values, ats in corpus:
            rows: list[tuple[float, ...]] = []
            likelihood.RECORD = rows
            try:
                d = AnomalySeries(spec)
                for v, at in zip(values, ats, strict=True):
                    d.update(v, at)
            finally:
                likelihood.RECORD = None
            assert len(rows) == len(values) - SETTLE, (len(rows), len(values))
            out.append(np.array(rows, dtype=float).reshape(-1, 2 + N_EXTRA))
        _features[key] = out
    return _features[key]


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted L2-penalised logistic regression by Newton's method: (intercept, coefs)."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0.0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], RIDGE)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        grad = z.T @ (w * (p - y)) + penalty * beta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    coefs = beta[1:] / sd
    return np.concatenate([[beta[0] - float(coefs @ mu)], coefs])


def fit(
    corpus: Corpus,
    windows: dict[str, Any],
    train: Sequence[int],
    used: Sequence[int] = tuple(range(N_EXTRA)),
    candidates: float = 1.5,
    openers: bool = False,
    cap: float = math.inf,
) -> tuple[float, ...]:
    """likelihood.WEIGHTS fitted on the files `train` (indices into `corpus`).

    `used`: which of the extra features enter (the others get weight 0); `candidates`:
    only points whose largest surprise is at least this many decades (rated per unit of
    time) are fitted on (the ranking is decided among rare points), -inf: all points;
    `openers`: only the points that open an episode by the largest surprise (a quarter of
    a decade over its recent peak: NAB counts a window's first detection, and the
    episode damps the rest); `cap`: the features' decades are capped there
    (likelihood.CAP, to be set to the same).
    """
    feats = features(corpus)
    xs, ys, ws, rated, base = [], [], [], [], []
    for i in train:
        key, ts, values, _ = corpus[i]
        f = feats[i]
        n = len(values)
        rows = prepare(key, [0.0] * n, ts, windows.get(key, []), STANDARD)
        start = probation_rows(n)
        # rows.* start at the probation; the features at SETTLE
        f = f[start - SETTLE :].copy()
        opens = f[:, 0] > f[:, 6] + PEAK_MARGIN
        capped = np.array([0, 1, 2, 3, 5])
        extra = f[:, 1 : 1 + N_EXTRA]
        extra[:, capped] = np.minimum(extra[:, capped], cap)
        f[:, 1 : 1 + N_EXTRA] = extra
        weight = np.array(rows.weights)
        window = np.array(rows.window_of)
        top, shift = f[:, 0], f[:, -1]
        d = top - shift
        keep = d >= candidates
        if openers:
            keep &= opens
        positive = window >= 0
        w = np.where(positive, weight, -weight)
        for win in set(window[positive & keep].tolist()):
            inside = keep & (window == win)
            w[inside] /= w[inside].sum()
        sel = keep & (w > 0)
        xs.append(np.hstack([top[:, None], f[:, 1 + np.array(used)]])[sel])
        ys.append(positive[sel].astype(float))
        ws.append(w[sel])
        rated.append(d)
        base.append(f)
    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    beta = _logistic(x, y, w)
    a = max(float(beta[1]), 0.1)
    extra = np.zeros(N_EXTRA)
    extra[np.array(used)] = beta[2:] / a
    # the offset: as many training points rated RATE_DECADES or more as the largest alone
    d_all = np.concatenate(rated)
    f_all = np.vstack(base)
    comb = f_all[:, 0] + f_all[:, 1 : 1 + N_EXTRA] @ extra - f_all[:, -1]
    share = float((d_all >= RATE_DECADES).mean())
    c = RATE_DECADES - float(np.quantile(comb, 1.0 - share)) if share > 0 else 0.0
    weights = (c, *(float(e) for e in extra))
    assert all(math.isfinite(v) for v in weights)
    return weights


def fitted_overrides(
    corpus: Corpus, windows: dict[str, Any], train: Sequence[int], **how: Any
) -> dict[str, Any]:
    weights = fit(corpus, windows, train, **how)
    print(f"    fitted on {len(train)} files: " + ", ".join(f"{v:.3f}" for v in weights))
    return {"processors.anomaly.likelihood.WEIGHTS": tuple(round(v, 6) for v in weights)}
