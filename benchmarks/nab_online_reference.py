"""A published NAB detector run online: CAD OSE without the file's range read in advance.

The published detectors that score over 65 on the held-out NAB files (ARTime, HTM, CAD
OSE) are handed each file's minimum and maximum before its first row (NAB's
`nab/detectors/base.py`: `inputMin` / `inputMax`), which the issue forbids tocsin. This
module measures what that knowledge is worth to one of them. It runs NAB's own CAD OSE
(`nab/detectors/context_ose`, NAB's Python 3 code, MIT licence) over every NAB file in
three ways and writes the scores as NAB result files, then scores them like the
published ones (`benchmarks.nab_reference` on the dev split, `benchmarks.nab_heldout`
on the other files, each at the threshold swept on the dev split):

- `contextOSE-file-range`: as NAB runs it, the value bins spanning the whole file's
  range (a rerun of the published `contextOSE`, under Python 3);
- `contextOSE-range-so-far`: the bins span the range seen up to and including the row;
- `contextOSE-warm-up-range`: the bins span the range of the file's probation period
  (what a warm-up has seen), fixed after it, later values clipped to it.

Every other setting is NAB's, its rest period included (a fifth of the probation period,
which NAB derives from the file's length: a look-ahead left in all three).

With `--htm PYTHON2` (a Python 2.7 interpreter with pip), NAB's HTM detector
(`nab/detectors/numenta`) runs too, as `numenta-file-range` and `numenta-warm-up-range`
(`benchmarks/nab_htm_py2.py`; NuPIC 1.0.5 and its pinned dependencies are installed
from PyPI for that interpreter into $TOCSIN_NAB_ONLINE_DIR/py2). HTM's value encoder
is unbounded and sized once, so it has no range-so-far run.

The data and code are not in this repository: the pinned commit of github.com/numenta/NAB
is downloaded, or read from a clone or bare git directory given with `--from`, into
$TOCSIN_NAB_ONLINE_DIR (default /tmp/tocsin-nab-online).

With `--corpus PATH` (another labelled corpus in NAB's layout, such as the one
`benchmarks/corpus_cloud_monitoring.py` prepares), the detectors run on the dev split
and that corpus instead, and the corpus is scored with each at its dev-swept threshold.

Rerun: `uv run python -m benchmarks.nab_online_reference [--from PATH/TO/NAB] [--htm PYTHON2]
[--corpus PATH]`
(TOCSIN_NAB_DIR defaults to ../shared/datasets/nab-dev; ~25 CPU-minutes, ~75 more
with HTM).
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.corpus_cloud_monitoring import from_tar
from benchmarks.nab_halves import DATA as DEV
from benchmarks.nab_halves import load
from processors.evaluation.nab import probation_rows

REPO = "numenta/NAB"
COMMIT = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
OUT = Path(os.environ.get("TOCSIN_NAB_ONLINE_DIR", "/tmp/tocsin-nab-online"))
PATHS = ("data", "labels", "nab/__init__.py", "nab/detectors/__init__.py")
CODE = "nab/detectors/context_ose"
PUBLISHED = ("ARTime", "contextOSE", "htmjava", "knncad", "numenta")
DETECTOR = "contextOSE"
MODES = ("file-range", "range-so-far", "warm-up-range")
HTM = "numenta"
HTM_MODES = ("file-range", "warm-up-range")
HTM_SCRIPT = Path(__file__).with_name("nab_htm_py2.py")
# NuPIC's last release and the versions it pins (nupic-1.0.5 METADATA), less its test,
# database and serialisation extras, which the detector does not import
NUPIC = (
    "nupic==1.0.5",
    "nupic.bindings==1.0.6",
    "numpy==1.12.1",
    "validictory==0.9.1",
    "PyYAML==3.10",
    "python-dateutil==2.1",
    "six==1.16.0",
    "prettytable==0.7.2",
    "asteval==0.9.1",
    "pyproj==1.9.3",
)


def _untar(data: bytes, out: Path) -> None:
    for path, content in from_tar(data).items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def fetch(source: Path | None, out: Path) -> None:
    """NAB's data, labels, CAD OSE's code and the published detectors' results."""
    paths = [*PATHS, CODE, *(f"results/{d}" for d in PUBLISHED)]
    if source is not None and (source / CODE).is_dir():
        tar = subprocess.run(
            ["tar", "-c", "--transform=s,^,nab/,", "-C", str(source), *paths],
            capture_output=True,
            check=True,
        ).stdout
    elif source is not None:
        git = ["git", "--git-dir", str(source), "archive", "--prefix=nab/", COMMIT, *paths]
        tar = subprocess.run(git, capture_output=True, check=True).stdout
    else:
        url = f"https://codeload.github.com/{REPO}/tar.gz/{COMMIT}"
        with urllib.request.urlopen(url, timeout=120) as response:
            tar = response.read()
    _untar(tar, out)


def _bins(detector: Any, lo: float, hi: float) -> None:
    """Point CAD OSE's value bins at [lo, hi], as its constructor does for the file's range."""
    detector.minValue, detector.maxValue = lo, hi
    span = hi - lo
    detector.fullValueRange = span if span != 0.0 else detector.maxBinValue
    detector.minValueStep = detector.fullValueRange / detector.maxBinValue


def detector_class(code: Path) -> Any:
    """NAB's CAD OSE class, imported from the folder holding NAB's `nab` package."""
    if str(code) not in sys.path:
        sys.path.insert(0, str(code))
    return importlib.import_module("nab.detectors.context_ose.cad_ose").ContextualAnomalyDetectorOSE


def cad_ose(mode: str, values: list[float], cls: Any) -> list[float]:
    """CAD OSE's score of every row, its value bins spanning the range `mode` names."""
    p = probation_rows(len(values))
    known = [v for v in values if not math.isnan(v)]
    lo, hi = min(known), max(known)
    detector = cls(minValue=lo, maxValue=hi, restPeriod=p / 5.0)
    score: Callable[[dict[str, float]], float] = detector.getAnomalyScore
    out = []
    first = True
    for i, v in enumerate(values):
        if math.isnan(v):
            # a row without a value (other corpora than NAB's) is skipped, as tocsin skips it
            out.append(0.0)
            continue
        if mode == "range-so-far":
            lo, hi = (v, v) if first else (min(lo, v), max(hi, v))
            _bins(detector, lo, hi)
        elif mode == "warm-up-range":
            if i < p or first:
                lo, hi = (v, v) if first else (min(lo, v), max(hi, v))
                _bins(detector, lo, hi)
            v = min(max(v, lo), hi)
        first = False
        out.append(score({"value": v}))
    return out


def _target(out: Path, mode: str, key: str, base: str = DETECTOR) -> Path:
    """Where NAB keeps a detector's result file for one data file."""
    category, name = key.split("/")
    detector = f"{base}-{mode}"
    return out / "results" / detector / category / f"{detector}_{name}"


def _write(key: str, mode: str, ts: list[str], values: list[float], out: Path) -> str:
    target = _target(out, mode, key)
    scores = cad_ose(mode, values, detector_class(out))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        writer.writerows(zip(ts, values, map(repr, scores), strict=True))
    return f"{DETECTOR}-{mode} {key}"


def run_all(out: Path, data: Path | None = None) -> None:
    """Every mode on every file of `data` (NAB's), in as many processes as there are cores."""
    corpus = load(out if data is None else data)
    with ProcessPoolExecutor() as pool:
        jobs = [
            pool.submit(_write, key, mode, ts, values, out)
            for mode in MODES
            for key, ts, values, _ in corpus
            if not _target(out, mode, key).is_file()
        ]
        for job in jobs:
            print(job.result(), flush=True)


def run_htm(python2: str, out: Path, paths: Sequence[Path]) -> None:
    """NAB's HTM detector in each of HTM_MODES on every file of `paths`, one process per core."""
    site = out / "py2"
    if not (site / "nupic").is_dir():
        pip = [python2, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
        subprocess.run([*pip, *NUPIC], check=True)
    env = {**os.environ, "NUPIC_SITE": str(site)}
    jobs = []
    for mode in HTM_MODES:
        for path in paths:
            target = _target(out, mode, f"{path.parent.name}/{path.name}", HTM)
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                jobs.append([python2, str(HTM_SCRIPT), mode, str(path), str(target)])

    def one(job: list[str]) -> str:
        subprocess.run(job, check=True, env=env, stdout=subprocess.DEVNULL)
        return f"{HTM}-{job[2]} {job[3]}"

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        for done in pool.map(one, jobs):
            print(done, flush=True)


def _files(data: Path) -> list[Path]:
    return sorted(data.glob("data/*/*.csv"))


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not (OUT / CODE).is_dir():
        source = Path(argv[argv.index("--from") + 1]) if "--from" in argv else None
        try:
            fetch(source, OUT)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"could not read {REPO} ({e}); clone it and pass --from PATH", file=sys.stderr)
            return 1
    from benchmarks.nab_cv import main as nab_cv
    from benchmarks.nab_reference import main as on_dev

    results = str(OUT / "results")
    if "--corpus" in argv:
        # another labelled corpus: the detectors on it, and on the dev split for thresholds
        corpus = Path(argv[argv.index("--corpus") + 1])
        dev = {f"{p.parent.name}/{p.name}" for p in _files(DEV)}
        run_all(OUT, DEV)
        run_all(OUT, corpus)
        if "--htm" in argv:
            nab = [p for p in _files(OUT) if f"{p.parent.name}/{p.name}" in dev]
            run_htm(argv[argv.index("--htm") + 1], OUT, [*nab, *_files(corpus)])
        return nab_cv(["--corpus", str(corpus), "--results", results])
    run_all(OUT)
    if "--htm" in argv:
        run_htm(argv[argv.index("--htm") + 1], OUT, _files(OUT))
    on_dev(["--results", results])
    return nab_cv(["--heldout", str(OUT), "--results", results])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
