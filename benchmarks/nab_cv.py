"""Out-of-sample NAB scores: cross-validation on the dev split, and the held-out check.

The dev split's 31 files are dealt into 5 folds stratified by category (files sorted
by name within each category, dealt in turn, the dealer carrying on across
categories). For each fold, everything that is chosen - the detector variant among
the candidates, the NAB threshold (per profile) and the alerting rule's threshold and
debouncing - is chosen on the other four folds and applied unchanged to the held-out
one. The figure is the pooled out-of-fold score: the held-out folds' raw scores added
up and normalised together (windows in probation are not counted, as in NAB).

How a threshold and a rule are chosen on the training folds is
`benchmarks/threshold_choice.py`: by default the threshold that scores best (NAB's
sweep) and, among the candidate rules within one missed window of the best, the one
that pages least. A variant's overrides of `benchmarks.threshold_choice` constants
change only the choice (the `choose-*` variants), and reuse the default's cached scores.
Given several variants, each chooses its threshold and rule by its own procedure, and
the variant whose choice scores best on the training folds is applied (so compare
choice variants one at a time: on its own training folds the argmax always wins).

Pages: each firing transition of the rule (k of n points at or over the threshold
after the warm-up, one of them opening a new episode, no new firing until
`resolve_after` quiet points resolved it) is a detection of 1.0; the rule is chosen on
the training folds among ALL_RULES that page a series at most once a month on pure
noise (Gaussian and lognormal, `noise_corpus`).

`--folds category` leaves one category out instead (artificialNoAnomaly has no window:
its fold scores only its false positives, printed raw).

`--corpus PATH` scores another labelled corpus in NAB's layout (e.g. the one
`benchmarks/corpus_cloud_monitoring.py` prepares) the same way, with the variant,
thresholds and rule chosen on all 31 dev files; nothing is chosen on it. With
`--results`, the result files there of other detectors (for the dev split and the
corpus) are scored beside it, each at its dev-swept threshold.

`--heldout NAB_CHECKOUT` is the final check on the NAB files that are not in the dev
split: the variant, threshold and rule chosen on all 31 dev files, applied once to
the other files. It chooses nothing on them; use it once, at the end. With
`--results PATH/TO/NAB/results`, the published detectors are scored beside it the same
way (each one's threshold swept on the dev split).

Per-file scores are cached under $TOCSIN_NAB_CACHE (default /tmp/tocsin-nab-cv),
keyed by the detector's source, the variant's detector settings and the file.

The parts: the folds and the out-of-fold scores `benchmarks/nab_folds.py`, the choice
among variants on training files `benchmarks/nab_choice.py`, the variants
`benchmarks/nab_variants.py`, the cached per-file scores `benchmarks/nab_scores.py`, the
alerting rules and their noise budget `benchmarks/nab_pages.py`, the held-out check and
other corpora `benchmarks/nab_heldout.py`; this module parses the options and prints.

Rerun: `uv run python -m benchmarks nab --cv` (= `uv run python -m benchmarks.nab_cv`)
[--variants a,b,...] [--folds 5|category] [--per-file] [--urgent 1.0,0.4,...]
[--resolve 5,10,...] [--warm-up 50,150,...]
[--heldout PATH/TO/NAB [--results PATH/TO/NAB/results]] [--corpus PATH [--results PATH]]
(TOCSIN_NAB_DIR defaults to ../shared/datasets/nab-dev).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks.nab_folds import FoldResult, cv_pages, cv_rank, fold_of, pooled, worst
from benchmarks.nab_halves import DATA, load
from benchmarks.nab_heldout import heldout, published, unseen
from benchmarks.nab_pages import ALL_RULES, NOISE_PAGES_PER_DAY, Rule, page_rows
from benchmarks.nab_scores import STANDARD, file_rows, score_variant
from benchmarks.nab_variants import VARIANTS
from processors.evaluation.nab import PROFILES, Profile, best_threshold, normalize, raw_at
from schemas.anomaly import AnomalySpec


def print_folds(title: str, results: Sequence[FoldResult], profile: Profile) -> None:
    print(f"\n{title}")
    for r in results:
        norm = f"{normalize(r.raw, r.windows, profile):6.1f}" if r.windows else "   n/a"
        print(
            f"  {r.fold:24} {norm}  raw {r.raw:7.2f}  windows {r.detected}/{r.windows}"
            f"  fp {r.fp:3}  chosen on the other folds: {r.choice}"
        )
    print(
        f"  {'pooled out-of-fold':24} {pooled(results, profile):6.1f}  "
        f"(worst fold {worst(results, profile):.1f}; "
        f"windows {sum(r.detected for r in results)}/{sum(r.windows for r in results)}, "
        f"fp {sum(r.fp for r in results)})"
    )


def main(argv: Sequence[str] = ()) -> int:
    argv = list(argv)
    if not (DATA / "data").is_dir():
        print(f"NAB data not found under {DATA} (set TOCSIN_NAB_DIR)")
        return 1
    names = argv[argv.index("--variants") + 1].split(",") if "--variants" in argv else ["default"]
    if "--urgent" in argv:
        # candidate rules that also page at once on one point this rare (1.0: never)
        urgent = [float(u) for u in argv[argv.index("--urgent") + 1].split(",")]
        ALL_RULES[:] = [
            Rule(r.threshold, r.k, r.n, r.warm_up, r.resolve_after, r.on, u)
            for r in ALL_RULES
            if r.urgent == 1.0
            for u in urgent
        ]
    # candidate rules with each of these quiet spells / warm-ups (the shipped rule's
    # values only, without the flag)
    if "--resolve" in argv:
        quiet = [int(v) for v in argv[argv.index("--resolve") + 1].split(",")]
        ALL_RULES[:] = [replace(r, resolve_after=v) for r in ALL_RULES for v in quiet]
    if "--warm-up" in argv:
        warm = [int(v) for v in argv[argv.index("--warm-up") + 1].split(",")]
        ALL_RULES[:] = [replace(r, warm_up=v) for r in ALL_RULES for v in warm]
    how = argv[argv.index("--folds") + 1] if "--folds" in argv else "5"
    windows = json.loads((DATA / "labels" / "combined_windows.json").read_text())
    corpus = load()
    if "--heldout" in argv:
        others = Path(argv[argv.index("--results") + 1]) if "--results" in argv else None
        return heldout(Path(argv[argv.index("--heldout") + 1]), names, corpus, windows, others)
    if "--corpus" in argv:
        path = Path(argv[argv.index("--corpus") + 1])
        started = time.monotonic()
        title = f"unseen corpus {path}: {sum(1 for _ in path.glob('data/*/*.csv'))} files"
        corpus_windows = json.loads((path / "labels" / "combined_windows.json").read_text())
        other = load(path)
        unseen(title, other, corpus_windows, names, corpus, windows, "--per-file" in argv)
        if "--results" in argv:
            others = Path(argv[argv.index("--results") + 1])
            published(others, corpus, other, windows, corpus_windows)
        print(f"  scored in {time.monotonic() - started:.0f} s wall (cached scores reused)")
        print(f"\nrerun: uv run python -m benchmarks.nab_cv {' '.join(argv)}")
        return 0
    scored = {name: score_variant(corpus, VARIANTS[name]) for name in names}
    for name, s in scored.items():
        if s.points_per_cpu_s:
            print(f"{name}: {s.points_per_cpu_s:,.0f} points per CPU-second (detector, uncached)")
    folds = fold_of(corpus, how)
    print(
        f"folds ({how}): "
        + "; ".join(f"{f}: {sum(1 for x in folds if x == f)} files" for f in sorted(set(folds)))
    )
    print(
        f"candidates: {', '.join(names)}; rules: thresholds "
        f"{sorted({r.threshold for r in ALL_RULES})} x debounce "
        f"{sorted({(r.k, r.n) for r in ALL_RULES})} x fresh or not, where pure noise pages at "
        f"most {NOISE_PAGES_PER_DAY:.3f} a day"
    )
    summary = []
    for profile in PROFILES:
        results = cv_rank(corpus, windows, scored, folds, profile)
        print_folds(f"NAB {profile.name}, out of fold", results, profile)
        summary.append(
            f"{profile.name} {pooled(results, profile):.1f} (worst {worst(results, profile):.1f})"
        )
    results = cv_pages(corpus, windows, scored, folds)
    if results:
        title = "pages (the rule's firing transitions, standard), out of fold"
        print_folds(title, results, STANDARD)
        summary.append(
            f"pages {pooled(results, STANDARD):.1f} (worst {worst(results, STANDARD):.1f})"
        )
    else:
        summary.append("pages: no rule within the noise budget")
    print(f"\nsummary [{','.join(names)}]: " + " | ".join(summary))
    spec = AnomalySpec()
    shipped = Rule(
        spec.threshold, spec.debounce_k, spec.debounce_n, spec.warm_up, spec.resolve_after
    )
    for label, rule in (
        ("the default rule", shipped),
        ("the rule before", Rule(0.3, 2, 5, on="rarity")),
    ):
        for name, s in scored.items():
            r = raw_at(page_rows(corpus, s, rule, windows), 0.5, STANDARD)
            print(
                f"in sample, {label} ({rule}), {name}: pages {r.normalized:.1f} "
                f"(windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
            )
    if "--per-file" in argv:
        for name, s in scored.items():
            files = file_rows(corpus, s.scores, windows, STANDARD)
            t = best_threshold(files, STANDARD).threshold
            for key, raw in raw_at(files, t, STANDARD).per_file.items():
                print(f"  {name:12} {raw:7.2f}  {key}")
    print(f"\nrerun: uv run python -m benchmarks.nab_cv {' '.join(argv)}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
