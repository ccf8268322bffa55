"""The final check: the NAB files outside the dev split, with everything chosen on it.

The detector variant, each profile's threshold and the alerting rule are chosen on all
31 dev files exactly as `benchmarks/nab_cv.py` chooses them on training folds, then
applied once to the other NAB files; nothing is chosen on those. With a `results/`
folder of a NAB checkout, the published detectors are scored beside it the same way.

Rerun: `uv run python -m benchmarks.nab_cv --heldout PATH/TO/NAB [--results PATH/TO/NAB/results]`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.nab_cv import (
    PROFILES,
    STANDARD,
    VARIANTS,
    Corpus,
    _pages,
    _prepare,
    best_threshold,
    load,
    raw_at,
    rules_for,
    score_variant,
)
from benchmarks.nab_reference import read_scores


def heldout(
    path: Path, chosen: list[str], dev: Corpus, windows: dict[str, Any], results: Path | None
) -> int:
    """Score the NAB files outside the dev split with everything chosen on the dev split."""
    all_windows = json.loads((path / "labels" / "combined_windows.json").read_text())
    dev_keys = {key for key, *_ in dev}
    corpus = [c for c in load(path) if c[0] not in dev_keys]
    print(
        f"\nheld-out check: {len(corpus)} NAB files outside the dev split, "
        f"{sum(len(all_windows.get(c[0], [])) for c in corpus)} windows"
    )
    dev_scored = {name: score_variant(dev, VARIANTS[name]) for name in chosen}
    for profile in PROFILES:
        best = max(
            (
                (best_threshold(_prepare(dev, s.scores, windows, profile), profile), name)
                for name, s in dev_scored.items()
            ),
            key=lambda r: r[0].raw,
        )
        res, name = best
        held = score_variant(corpus, VARIANTS[name])
        r = raw_at(_prepare(corpus, held.scores, all_windows, profile), res.threshold, profile)
        print(
            f"  {profile.name:20} {r.normalized:6.1f}  ({name} @ {res.threshold:.3f} from dev; "
            f"windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
        )
    (name, rule), _ = max(
        (
            ((name, rule), raw_at(_pages(dev, s, rule, windows), 0.5, STANDARD).raw)
            for name, s in dev_scored.items()
            for rule in rules_for(VARIANTS[name])
        ),
        key=lambda kv: kv[1],
    )
    held = score_variant(corpus, VARIANTS[name])
    r = raw_at(_pages(corpus, held, rule, all_windows), 0.5, STANDARD)
    print(
        f"  {'pages (standard)':20} {r.normalized:6.1f}  ({name}, rule {rule} from dev; "
        f"windows {r.detected_windows}/{r.windows}, fp {r.false_positives})"
    )
    by_category: dict[str, list[float]] = {}
    for key, raw in r.per_file.items():
        by_category.setdefault(key.split("/")[0], []).append(raw)
    print(
        "  pages raw by category: " + ", ".join(f"{c} {sum(v):.2f}" for c, v in by_category.items())
    )
    if results is not None:
        published(results, dev, corpus, windows, all_windows)
    return 0


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
        t = best_threshold(_prepare(dev, on_dev, windows, STANDARD), STANDARD).threshold
        r = raw_at(_prepare(held, on_held, all_windows, STANDARD), t, STANDARD)
        print(
            f"    {detector:22} {r.normalized:6.1f}  (windows {r.detected_windows}/{r.windows}, "
            f"fp {r.false_positives})"
        )
