"""The final check: the NAB files outside the dev split, with everything chosen on it.

The detector variant, each profile's threshold and the alerting rule are chosen on all
31 dev files exactly as the cross-validation (`benchmarks/nab_cv.py`) chooses them on
training folds (`benchmarks/nab_choice.py`, by the procedures of
`benchmarks/threshold_choice.py`), then applied once to the other NAB files; nothing is
chosen on those. With a `results/` folder of a NAB checkout, the published detectors are
scored beside it, each at the threshold that scores best on the dev split (NAB's own
choice, as for the rolling z-score baseline).
`--corpus PATH` scores any other corpus in NAB's layout (data/<category>/<file>.csv,
labels/combined_windows.json) the same way, all its files.

Rerun: `uv run python -m benchmarks.nab_cv --heldout PATH/TO/NAB [--results PATH/TO/NAB/results]`
or `uv run python -m benchmarks.nab_cv --corpus PATH [--per-file]`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.baseline_zscore import WINDOW, zscores
from benchmarks.nab_choice import choose_rule, choose_threshold
from benchmarks.nab_halves import Corpus, load
from benchmarks.nab_pages import page_rows, rules_for
from benchmarks.nab_reference import read_scores
from benchmarks.nab_scores import STANDARD, file_rows, score_variant
from benchmarks.nab_variants import VARIANTS
from processors.evaluation.nab import PROFILES, FileRows, Profile, best_threshold, raw_at


def heldout(
    path: Path, chosen: list[str], dev: Corpus, windows: dict[str, Any], results: Path | None
) -> int:
    """Score the NAB files outside the dev split with everything chosen on the dev split."""
    all_windows = json.loads((path / "labels" / "combined_windows.json").read_text())
    dev_keys = {key for key, *_ in dev}
    corpus = [c for c in load(path) if c[0] not in dev_keys]
    title = f"held-out check: {len(corpus)} NAB files outside the dev split"
    unseen(title, corpus, all_windows, chosen, dev, windows)
    if results is not None:
        published(results, dev, corpus, windows, all_windows)
    return 0


def unseen(
    title: str,
    corpus: Corpus,
    corpus_windows: dict[str, Any],
    chosen: list[str],
    dev: Corpus,
    windows: dict[str, Any],
    per_file: bool = False,
) -> None:
    """Score files never chosen on with the variant, thresholds and rule chosen on `dev`.

    Beside the detector, the rolling z-score baseline at its own dev-swept threshold
    (the null detector scores 0 by construction). Per category: the detector's standard
    score, its pages and the baseline's standard score.
    """
    print(
        f"\n{title}, {sum(len(corpus_windows.get(c[0], [])) for c in corpus)} windows, "
        f"{sum(len(c[2]) for c in corpus):,} points"
    )
    dev_scored = {name: score_variant(dev, VARIANTS[name]) for name in chosen}
    held = {name: score_variant(corpus, VARIANTS[name]) for name in chosen}
    by_column: dict[str, tuple[list[FileRows], float, Profile]] = {}
    everything = range(len(dev))
    for profile in PROFILES:
        on_dev = {
            name: file_rows(dev, s.scores, windows, profile) for name, s in dev_scored.items()
        }
        name, threshold = choose_threshold(on_dev, everything, profile)
        files = file_rows(corpus, held[name].scores, corpus_windows, profile)
        r = raw_at(files, threshold, profile)
        print(
            f"  {profile.name:20} {r.normalized:6.1f}  ({name} @ {threshold:.3f} from dev; "
            f"windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
        )
        if profile is STANDARD:
            by_column["standard"] = (files, threshold, STANDARD)
            _oracle(f"{name}, oracle", files)
    pages_on_dev = {
        (name, rule): page_rows(dev, s, rule, windows)
        for name, s in dev_scored.items()
        for rule in rules_for(VARIANTS[name])
    }
    name, rule = choose_rule(pages_on_dev, everything)
    files = page_rows(corpus, held[name], rule, corpus_windows)
    r = raw_at(files, 0.5, STANDARD)
    print(
        f"  {'pages (standard)':20} {r.normalized:6.1f}  ({name}, rule {rule} from dev; "
        f"windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
    )
    by_column["pages"] = (files, 0.5, STANDARD)
    z_dev = file_rows(dev, [zscores(c[2]) for c in dev], windows, STANDARD)
    t = best_threshold(z_dev, STANDARD).threshold
    files = file_rows(corpus, [zscores(c[2]) for c in corpus], corpus_windows, STANDARD)
    r = raw_at(files, t, STANDARD)
    print(
        f"  {'z-score baseline':20} {r.normalized:6.1f}  (standard; rolling {WINDOW} points, "
        f"@ {t:.3f} from dev; windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
    )
    by_column["z-score"] = (files, t, STANDARD)
    _by_category(by_column)
    if per_file:
        for column, (files, t, profile) in by_column.items():
            for key, raw in raw_at(files, t, profile).per_file.items():
                print(f"  {column:10} {raw:7.2f}  {key}")
    for name, s in held.items():
        if s.points_per_cpu_s:
            print(f"  {name}: {s.points_per_cpu_s:,.0f} points per CPU-second (detector, uncached)")


def _by_category(by_column: dict[str, tuple[list[FileRows], float, Profile]]) -> None:
    """Normalised score, windows found / windows and false positives, per category."""
    print(f"  {'by category':40} files" + "".join(f"{c:>25}" for c in by_column))
    first = next(iter(by_column.values()))[0]
    categories = sorted({f.name.split("/")[0] for f in first})
    for category in categories:
        n = sum(1 for f in first if f.name.split("/")[0] == category)
        cells = []
        for files, t, profile in by_column.values():
            r = raw_at([f for f in files if f.name.split("/")[0] == category], t, profile)
            norm = f"{r.normalized:5.1f}" if r.windows else "  n/a"
            cells.append(f"{norm} {r.detected_windows:3}/{r.windows:<3} fp {r.false_positives:4}")
        print(f"  {category:40} {n:5}" + "".join(f"{c:>25}" for c in cells))


def published(
    results: Path,
    dev: Corpus,
    held: Corpus,
    windows: dict[str, Any],
    all_windows: dict[str, Any],
) -> None:
    """NAB's published detectors on the held-out files, each at its dev-swept threshold."""
    print("  published detectors, threshold swept on the dev split (standard):")
    for detector in sorted(p.name for p in results.iterdir() if p.is_dir()):

        def scores(corpus: Corpus, detector: str = detector) -> list[list[float]] | None:
            out = []
            for key, ts, _, _ in corpus:
                category, name = key.split("/")
                s = read_scores(results / detector / category / f"{detector}_{name}", len(ts))
                if s is None:
                    return None
                out.append(s)
            return out

        on_dev, on_held = scores(dev), scores(held)
        if on_dev is None or on_held is None:
            continue
        t = best_threshold(file_rows(dev, on_dev, windows, STANDARD), STANDARD).threshold
        files = file_rows(held, on_held, all_windows, STANDARD)
        r = raw_at(files, t, STANDARD)
        print(
            f"    {detector:22} {r.normalized:6.1f}  (windows {r.detected_windows}/{r.windows}, "
            f"fp {r.false_positives})"
        )
        _oracle(f"  {detector}, oracle", files)


def _oracle(label: str, files: list[FileRows]) -> None:
    """A diagnostic, not a result: the score at the threshold chosen on these very files,
    the most any choice of threshold could get from this ranking."""
    best = best_threshold(files, STANDARD)
    r = raw_at(files, best.threshold, STANDARD)
    print(
        f"    {label:22} {r.normalized:6.1f}  (diagnostic: threshold {best.threshold:.3f} chosen "
        f"on these files; windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
    )
