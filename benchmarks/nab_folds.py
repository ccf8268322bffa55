"""The NAB cross-validation: the folds, and each fold scored with what its other folds chose.

The dev split's files are dealt into K folds stratified by category (files sorted by
name within each category, dealt in turn, the dealer carrying on across categories), or
one fold per category (`--folds category`). Each fold is scored with the variant, the
threshold or the rule chosen on the other folds (`benchmarks/nab_choice.py`); the figure
is the pooled out-of-fold score, the folds' raw scores added up and normalised together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.nab_choice import choose_rule, choose_threshold
from benchmarks.nab_halves import Corpus
from benchmarks.nab_pages import page_rows, rules_for
from benchmarks.nab_scores import STANDARD, Scored, file_rows
from benchmarks.nab_variants import VARIANTS
from processors.evaluation.nab import Profile, normalize, raw_at

K = 5


def fold_of(corpus: Corpus, how: str) -> list[str]:
    if how == "category":
        return [key.split("/")[0] for key, *_ in corpus]
    dealt = 0
    by_category: dict[str, list[int]] = {}
    for i, (key, *_) in enumerate(corpus):
        by_category.setdefault(key.split("/")[0], []).append(i)
    folds = [""] * len(corpus)
    for category in sorted(by_category):
        for i in sorted(by_category[category], key=lambda j: corpus[j][0]):
            folds[i] = f"fold {dealt % K + 1}"
            dealt += 1
    return folds


@dataclass
class FoldResult:
    fold: str
    choice: str
    raw: float
    windows: int
    detected: int
    fp: int


def cv_rank(
    corpus: Corpus,
    windows: dict[str, Any],
    scored: dict[str, Scored],
    folds: list[str],
    profile: Profile,
) -> list[FoldResult]:
    prepared = {name: file_rows(corpus, s.scores, windows, profile) for name, s in scored.items()}
    out = []
    for fold in sorted(set(folds)):
        train = [i for i, f in enumerate(folds) if f != fold]
        test = [i for i, f in enumerate(folds) if f == fold]
        name, t = choose_threshold(prepared, train, profile)
        r = raw_at([prepared[name][i] for i in test], t, profile)
        out.append(
            FoldResult(
                fold, f"{name} @ {t:.3f}", r.raw, r.windows, r.detected_windows, r.false_positives
            )
        )
    return out


def cv_pages(
    corpus: Corpus, windows: dict[str, Any], scored: dict[str, Scored], folds: list[str]
) -> list[FoldResult]:
    prepared = {
        (name, rule): page_rows(corpus, s, rule, windows)
        for name, s in scored.items()
        for rule in rules_for(VARIANTS[name])
    }
    if not prepared:
        print("\npages: no candidate rule pages pure noise at most once a month; not scored")
        return []
    out = []
    for fold in sorted(set(folds)):
        train = [i for i, f in enumerate(folds) if f != fold]
        test = [i for i, f in enumerate(folds) if f == fold]
        name, rule = choose_rule(prepared, train)
        r = raw_at([prepared[(name, rule)][i] for i in test], 0.5, STANDARD)
        out.append(
            FoldResult(
                fold,
                f"{name}, rule {rule}",
                r.raw,
                r.windows,
                r.detected_windows,
                r.false_positives,
            )
        )
    return out


def pooled(results: Sequence[FoldResult], profile: Profile) -> float:
    return normalize(sum(r.raw for r in results), sum(r.windows for r in results), profile)


def worst(results: Sequence[FoldResult], profile: Profile) -> float:
    return min(normalize(r.raw, r.windows, profile) for r in results if r.windows)
