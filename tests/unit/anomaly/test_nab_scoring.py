"""The NAB scorer on hand-built cases whose scores can be worked out by hand."""

from __future__ import annotations

import pytest

from processors.evaluation.nab import (
    PROFILES,
    best_threshold,
    label_windows,
    prepare,
    raw_at,
    sigmoid,
    window_rows,
)

STD = PROFILES[0]


def _ts(n: int) -> list[str]:
    return [f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}" for i in range(n)]


def test_sigmoid_matches_the_published_shape() -> None:
    assert sigmoid(0) == pytest.approx(0.0)
    assert sigmoid(-1) == pytest.approx(2 / (1 + 2.718281828**-5) - 1)
    assert sigmoid(3.5) == -1.0


def test_perfect_and_null_detectors_score_100_and_0() -> None:
    ts = _ts(200)
    windows = [(ts[100], ts[119])]
    perfect = [0.0] * 200
    perfect[100] = 1.0
    f = prepare("f", perfect, ts, windows, STD)
    assert best_threshold([f], STD).normalized == pytest.approx(100.0, abs=0.01)
    null = prepare("f", [0.0] * 200, ts, windows, STD)
    assert raw_at([null], 0.5, STD).normalized == pytest.approx(0.0)


def test_late_detection_in_a_window_is_worth_less() -> None:
    ts = _ts(200)
    windows = [(ts[100], ts[119])]
    early, late = [0.0] * 200, [0.0] * 200
    early[101], late[118] = 1.0, 1.0
    e = raw_at([prepare("f", early, ts, windows, STD)], 0.5, STD)
    lt = raw_at([prepare("f", late, ts, windows, STD)], 0.5, STD)
    assert e.raw > lt.raw > -1.0
    assert e.detected_windows == lt.detected_windows == 1


def test_false_positives_cost_fp_weight_far_from_windows_and_less_just_after() -> None:
    ts = _ts(400)
    windows = [(ts[100], ts[119])]
    far, near = [0.0] * 400, [0.0] * 400
    far[390], near[121] = 1.0, 1.0
    f = raw_at([prepare("f", far, ts, windows, STD)], 0.5, STD)
    n = raw_at([prepare("f", near, ts, windows, STD)], 0.5, STD)
    assert f.raw == pytest.approx(-1.0 - STD.fp)  # missed window + full FP cost
    assert -1.0 - STD.fp < n.raw < -1.0
    assert f.false_positives == n.false_positives == 1


def test_probation_rows_are_not_scored() -> None:
    ts = _ts(200)  # probation = 30 rows
    scores = [0.0] * 200
    scores[10] = 1.0  # a detection inside probation costs nothing
    result = raw_at([prepare("f", scores, ts, [], STD)], 0.5, STD)
    assert result.raw == 0.0
    assert result.false_positives == 0


def test_the_sweep_picks_the_threshold_that_separates_best() -> None:
    ts = _ts(300)
    windows = [(ts[200], ts[219])]
    scores = [0.1] * 300
    scores[150] = 0.6  # a false positive
    scores[205] = 0.8  # the true detection
    best = best_threshold([prepare("f", scores, ts, windows, STD)], STD)
    assert 0.6 < best.threshold <= 0.8
    assert best.false_positives == 0
    assert best.detected_windows == 1


def test_sigmoid_is_minus_one_from_three_on_as_nab_sweeper() -> None:
    assert sigmoid(3.0) == -1.0
    assert sigmoid(2.999) > -1.0


def test_windows_follow_file_order_like_nab_sweeper() -> None:
    ts = _ts(10)
    # a duplicate and an out-of-order row between the bounds belong to the window
    rows = [ts[0], ts[1], ts[2], ts[2], ts[1], ts[3], ts[4], ts[5], ts[6], ts[7]]
    assert window_rows(rows, [(ts[2], ts[4])]) == [[2, 3, 4, 5, 6]]
    # bounds that are not timestamps of the file: the rows between them
    gap = [t for i, t in enumerate(ts) if i != 2]
    assert window_rows(gap, [(ts[2], ts[5])]) == [[2, 3, 4]]


def test_a_labelled_point_gets_nabs_centred_window() -> None:
    ts = _ts(1000)  # probation 150 rows; one anomaly: a window of 100 rows
    labels = [0] * 1000
    labels[500] = 1
    assert label_windows(ts, labels) == [(ts[450], ts[550])]


def test_a_labelled_run_is_one_anomaly_widened_on_both_sides() -> None:
    ts = _ts(1000)
    labels = [0] * 1000
    for i in (300, 301, 302, 700):  # two anomalies: 50 rows each, 25 on each side
        labels[i] = 1
    assert label_windows(ts, labels) == [(ts[275], ts[327]), (ts[675], ts[725])]


def test_windows_that_overlap_merge_and_those_starting_in_probation_go() -> None:
    ts = _ts(1000)
    labels = [0] * 1000
    for i in (160, 400, 420):  # three anomalies: 33 rows, 16 on each side
        labels[i] = 1
    # 160 - 16 starts inside the 150-row probation; 400 and 420's windows overlap
    assert label_windows(ts, labels) == [(ts[384], ts[436])]
    assert label_windows(ts, [0] * 1000) == []
