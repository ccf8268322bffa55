"""The second corpus arrives in NAB's layout, and the baseline beside it is a real detector."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from benchmarks.baseline_zscore import zscores
from benchmarks.corpus_cloud_monitoring import prepare
from benchmarks.nab_halves import load
from processors.evaluation.nab import window_rows


def _dataset_file(rows: int, labelled: set[int]) -> bytes:
    lines = ["TimeStamp,Value,Label"]
    for i in range(rows):
        value = "" if i == 5 else str(100 + i % 7)
        lines.append(
            f'"2018-06-{1 + i // 24:02d}T{i % 24:02d}:00:00Z",{value},{int(i in labelled)}'
        )
    return ("\n".join(lines) + "\n").encode()


def test_the_dataset_is_written_in_nab_layout_with_windows_from_its_labels(
    tmp_path: Path,
) -> None:
    files = {
        "data/latency/outbound-01.csv": _dataset_file(480, {300, 301, 302}),
        "data/latency/outbound-02.csv": _dataset_file(480, set()),
        "LICENSE": b"MIT License\n",
    }
    assert prepare(files, tmp_path) == (2, 1)
    corpus = {key: (ts, values) for key, ts, values, _ in load(tmp_path)}
    ts, values = corpus["latency/outbound-01.csv"]
    assert ts[0] == "2018-06-01 00:00:00"  # UTC, NAB's format: the windows' bounds match
    assert math.isnan(values[5])  # a missing value stays missing, the row stays
    assert len(values) == 480
    windows = json.loads((tmp_path / "labels" / "combined_windows.json").read_text())
    assert windows["latency/outbound-02.csv"] == []
    (rows,) = window_rows(ts, windows["latency/outbound-01.csv"])
    assert {300, 301, 302} <= set(rows)
    assert (tmp_path / "LICENSE").read_bytes() == b"MIT License\n"


def test_the_z_score_baseline_scores_a_jump_high_and_noise_low() -> None:
    rng = random.Random(1)
    values = [100 + rng.gauss(0, 1) for _ in range(600)]
    values[500] = 130.0
    values[550] = math.nan
    scores = zscores(values)
    assert scores[500] > 0.95
    assert max(scores[300:500]) < 0.85
    assert scores[550] == 0.0
    flat = zscores([5.0] * 50 + [6.0])
    assert flat[:50] == [0.0] * 50 and flat[50] == 1.0
