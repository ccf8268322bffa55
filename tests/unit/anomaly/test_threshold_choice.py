"""How the benchmark chooses a threshold and a rule on training files (threshold_choice)."""

from __future__ import annotations

import random

import pytest

from benchmarks import threshold_choice
from benchmarks.threshold_choice import choose, choose_rule, threshold_table
from processors.evaluation.nab import PROFILES, FileRows, best_threshold, raw_at

STANDARD = PROFILES[0]


def window_file(name: str, caught: list[tuple[float, float]], fps: list[float]) -> FileRows:
    """One window caught at each (score, weight); false positives at the given scores."""
    scores = [s for s, _ in caught] + fps
    weights = [w for _, w in caught] + [-0.11] * len(fps)
    return FileRows(name, scores, weights, [0] * len(caught) + [-1] * len(fps), 1)


def test_the_table_holds_each_files_nab_score_at_every_candidate() -> None:
    rng = random.Random(7)
    files = []
    for f in range(6):
        n, k = 60, rng.randrange(3)
        window_of = [rng.randrange(k) if k and rng.random() < 0.2 else -1 for _ in range(n)]
        weights = [rng.uniform(0.1, 1.0) if w >= 0 else -0.11 for w in window_of]
        scores = [round(rng.uniform(0.0, 0.6), 2) for _ in range(n)]
        files.append(FileRows(f"c{f % 2}/f{f}", scores, weights, window_of, k))
    grid, table = threshold_table(files, STANDARD)
    for c, t in enumerate(grid):
        assert sum(row[c] for row in table.raw) == pytest.approx(raw_at(files, t, STANDARD).raw)
    best = best_threshold(files, STANDARD)
    assert grid[choose(table, STANDARD, "argmax")] == best.threshold


def test_a_plateau_decided_by_one_window_goes_to_its_rarer_end() -> None:
    # at 0.30 the second file's window is caught late (0.3) at the price of four false
    # positives: 0.86 better than missing it, less than one missed window (fn = 1.0)
    files = [
        window_file("a/1", [(0.5, 1.0)], []),
        window_file("b/1", [(0.30, 0.3)], [0.31, 0.32, 0.33, 0.34]),
    ]
    grid, table = threshold_table(files, STANDARD)
    assert grid[choose(table, STANDARD, "argmax")] == 0.30
    assert grid[choose(table, STANDARD, "plateau")] == 0.5


def test_a_window_worth_more_than_its_false_positives_keeps_the_lower_threshold() -> None:
    files = [
        window_file("a/1", [(0.5, 1.0)], []),
        window_file("b/1", [(0.30, 1.0)], [0.31]),
    ]
    grid, table = threshold_table(files, STANDARD)
    assert grid[choose(table, STANDARD, "plateau")] == 0.30


def test_bagging_at_the_rarer_quartile_drops_a_threshold_that_rests_on_one_file_of_five(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # only the first file gains at 0.3; the others each pay a false positive there
    files = [window_file("a/1", [(0.3, 1.0)], [])] + [
        window_file(f"b/{i}", [(0.6, 1.0)], [0.3]) for i in range(4)
    ]
    grid, table = threshold_table(files, STANDARD)
    assert grid[choose(table, STANDARD, "argmax")] == 0.3
    # a file is in about two resamples of three: the median keeps its threshold
    assert grid[choose(table, STANDARD, "bagged")] == 0.3
    monkeypatch.setattr(threshold_choice, "QUANTILE", 0.25)
    assert grid[choose(table, STANDARD, "bagged")] == 0.6


def test_per_file_normalising_stops_one_file_with_many_windows_deciding() -> None:
    # a file with ten windows gains two of them at 0.3; three one-window files lose
    # their only window's worth there through false positives
    many = FileRows(
        "tweets/1",
        [0.6] * 8 + [0.3] * 2,
        [1.0] * 10,
        list(range(10)),
        10,
    )
    few = [window_file(f"other{i}/1", [(0.6, 1.0)], [0.3] * 6) for i in range(3)]
    files = [many, *few]
    grid, table = threshold_table(files, STANDARD)
    assert grid[choose(table, STANDARD, "argmax")] == 0.3
    assert grid[choose(table, STANDARD, "per-file")] == 0.6
    assert grid[choose(table, STANDARD, "per-category")] == 0.6


@pytest.mark.parametrize(("late", "chosen"), [(0.1, "quiet"), (0.5, "noisy")])
def test_the_rule_that_pages_least_within_a_window_of_the_best_is_chosen(
    monkeypatch: pytest.MonkeyPatch, late: float, chosen: str
) -> None:
    # alerts as NAB detections (1 at each page): the noisy rule also catches the second
    # window, late, and pages twice on nothing; the quiet rule misses that window
    def pages(fired: list[int]) -> list[FileRows]:
        weights = [1.0, 0.9, late, -0.11, -0.11]
        return [FileRows("a/1", [float(x) for x in fired], weights, [0, 0, 1, -1, -1], 2)]

    candidates = {"noisy": pages([1, 0, 1, 1, 1]), "quiet": pages([0, 1, 0, 0, 0])}
    names = list(candidates)
    monkeypatch.setattr(threshold_choice, "RULE", "argmax")
    assert names[choose_rule(list(candidates.values()), STANDARD)] == "noisy"
    monkeypatch.setattr(threshold_choice, "RULE", "plateau")
    # caught at 0.1 the window is worth less than one missed window over the quiet rule
    assert names[choose_rule(list(candidates.values()), STANDARD)] == chosen


def test_an_unknown_procedure_is_named_in_the_error() -> None:
    _, table = threshold_table([window_file("a/1", [(0.5, 1.0)], [])], STANDARD)
    with pytest.raises(ValueError, match="median"):
        choose(table, STANDARD, "median")
