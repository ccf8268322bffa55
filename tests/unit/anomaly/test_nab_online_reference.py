"""The online runs of NAB's CAD OSE read no row before it arrives.

NAB's CAD OSE is not in this repository, so a stand-in with its constructor's value-bin
arithmetic records the range its bins span when each row is scored.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from benchmarks.nab_online_reference import cad_ose
from processors.evaluation.nab import probation_rows


class BinRecorder:
    """CAD OSE's value-bin attributes, recording (bins' low end, high end, value) per row."""

    maxBinValue = 7.0
    last: ClassVar[list[tuple[float, float, float]]] = []

    def __init__(self, minValue: float, maxValue: float, restPeriod: float) -> None:
        self.minValue, self.maxValue = float(minValue), float(maxValue)
        self.fullValueRange = (self.maxValue - self.minValue) or self.maxBinValue
        self.minValueStep = self.fullValueRange / self.maxBinValue
        self.rows: list[tuple[float, float, float]] = []
        BinRecorder.last = self.rows

    def getAnomalyScore(self, row: dict[str, Any]) -> float:
        self.rows.append((self.minValue, self.maxValue, row["value"]))
        return 0.0


SERIES = [5.0, 4.0, 6.0, 5.0] * 300 + [50.0] + [5.0, -20.0] * 50


def test_the_range_so_far_is_the_range_of_the_rows_already_seen() -> None:
    cad_ose("range-so-far", SERIES, BinRecorder)
    for i, (lo, hi, value) in enumerate(BinRecorder.last):
        assert (lo, hi) == (min(SERIES[: i + 1]), max(SERIES[: i + 1]))
        assert value == SERIES[i]


def test_the_warm_up_range_is_fixed_after_the_probation_and_later_values_clipped_to_it() -> None:
    cad_ose("warm-up-range", SERIES, BinRecorder)
    p = probation_rows(len(SERIES))
    assert BinRecorder.last[p - 1][:2] == (4.0, 6.0)
    assert {row[:2] for row in BinRecorder.last[p:]} == {(4.0, 6.0)}
    assert {row[2] for row in BinRecorder.last[p:]} == {4.0, 5.0, 6.0}


def test_the_published_setup_knows_the_whole_files_range_at_the_first_row() -> None:
    cad_ose("file-range", SERIES, BinRecorder)
    assert BinRecorder.last[0][:2] == (-20.0, 50.0)


def test_the_probation_period_is_nabs() -> None:
    assert (probation_rows(4032), probation_rows(1127), probation_rows(22695)) == (604, 169, 750)


def test_a_row_without_a_value_scores_zero_and_is_not_shown_to_the_detector() -> None:
    series = [math.nan, *SERIES[:500], math.nan, *SERIES[500:]]
    for mode in ("file-range", "range-so-far", "warm-up-range"):
        scores = cad_ose(mode, series, BinRecorder)
        assert scores[0] == 0.0 and scores[501] == 0.0
        shown = [value for _, _, value in BinRecorder.last]
        assert len(shown) == len(SERIES) and not any(math.isnan(v) for v in shown)
        assert not any(math.isnan(x) for lo, hi, _ in BinRecorder.last for x in (lo, hi))
