"""The choice among variants on training files: the variant with its threshold, or its rule.

Each variant chooses its NAB threshold and its alerting rule by its own procedure
(`benchmarks/threshold_choice.py`, switched by the variant's overrides), and the variant
whose choice scores best on the training files is the one applied. The cross-validation
(`benchmarks/nab_folds.py`) chooses on each fold's other folds; the held-out check
(`benchmarks/nab_heldout.py`) on all the dev files.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import threshold_choice
from benchmarks.nab_pages import Rule
from benchmarks.nab_scores import STANDARD
from benchmarks.nab_variants import VARIANTS, choice_overrides, overridden
from processors.evaluation.nab import FileRows, Profile, raw_at


def choose_threshold(
    prepared: dict[str, list[FileRows]], train: Sequence[int], profile: Profile
) -> tuple[str, float]:
    """The variant and the threshold, each variant's by its own choice procedure."""
    best: tuple[float, str, float] | None = None
    for name, p in prepared.items():
        files = [p[i] for i in train]
        with overridden(choice_overrides(VARIANTS[name])):
            t = threshold_choice.choose_threshold(files, profile)
        raw = raw_at(files, t, profile).raw
        if best is None or raw > best[0]:
            best = (raw, name, t)
    assert best is not None
    return best[1], best[2]


def choose_rule(
    prepared: dict[tuple[str, Rule], list[FileRows]], train: Sequence[int]
) -> tuple[str, Rule]:
    """The variant and the alerting rule, each variant's by its own choice procedure."""
    best: tuple[float, tuple[str, Rule]] | None = None
    for name in dict.fromkeys(name for name, _ in prepared):
        keys = [k for k in prepared if k[0] == name]
        files = [[prepared[k][i] for i in train] for k in keys]
        with overridden(choice_overrides(VARIANTS[name])):
            c = threshold_choice.choose_rule(files, STANDARD)
        raw = raw_at(files[c], 0.5, STANDARD).raw
        if best is None or raw > best[0]:
            best = (raw, keys[c])
    assert best is not None
    return best[1]
