"""Published NAB detectors' result files, scored on the dev split like tocsin's.

The issue's target (70, "the level of Numenta's HTM") is a full-corpus figure; the
dev split is 31 of the 58 files, so the published detectors are scored here on the
same 31 files, with the same scorer and a threshold swept on the dev split alone,
beside tocsin's detector. Their result files are not shipped: point --results at
the `results/` folder of a checkout of github.com/numenta/NAB.

Rerun: `uv run python -m benchmarks.nab_reference --results PATH/TO/NAB/results`
(TOCSIN_NAB_DIR defaults to ../shared/datasets/nab-dev).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.nab_halves import DATA, line, load, report, score_corpus
from schemas.anomaly import AnomalySpec


def read_scores(path: Path, rows: int) -> list[float] | None:
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        scores = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
    return scores if len(scores) == rows else None


def main(argv: Sequence[str]) -> int:
    if "--results" not in argv:
        print(__doc__)
        return 2
    results = Path(argv[list(argv).index("--results") + 1])
    windows = json.loads((DATA / "labels" / "combined_windows.json").read_text())
    corpus = load()
    scores, _ = score_corpus(corpus, AnomalySpec.model_validate({}))
    rows = [("tocsin likelihood (default)", report(corpus, scores, windows))]
    for detector in sorted(p.name for p in results.iterdir() if p.is_dir()):
        theirs = []
        for key, ts, _, _ in corpus:
            category, name = key.split("/")
            s = read_scores(results / detector / category / f"{detector}_{name}", len(ts))
            if s is None:
                break
            theirs.append(s)
        else:
            rows.append((detector, report(corpus, theirs, windows)))
            continue
        print(f"{detector}: no complete result files for the dev split, skipped")
    rows.sort(key=lambda r: -r[1]["standard"])
    print("NAB dev split (31 files), every detector swept on the dev split alone:")
    for label, r in rows:
        print(line(label, r))
    print("rerun: uv run python -m benchmarks.nab_reference --results PATH/TO/NAB/results")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
