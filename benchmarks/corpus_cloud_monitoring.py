"""A second labelled corpus: Microsoft's Cloud Monitoring Dataset, in NAB's layout.

67 real series of production service and client telemetry (API request rates and
latencies, database query rates per machine and per application, data ingress,
application crash rates, store purchases, service unavailability), sampled every
minute or every hour, each row labelled 0/1 by domain experts; some series have no
anomaly at all. MIT licence (the dataset's LICENSE is copied next to the data).
Source: github.com/microsoft/cloud-monitoring-dataset, pinned at COMMIT.

The data is not in this repository. This module brings it into $TOCSIN_CORPUS_DIR
(default /tmp/tocsin-corpus-cloud-monitoring) as NAB lays its corpus out:
data/<category>/<file>.csv (timestamp, value; timestamps in UTC as
"YYYY-MM-DD HH:MM:SS", missing values as nan, rows kept as they come, duplicates
included) and labels/combined_windows.json, whose windows come from the row labels by
NAB's labelling rule (`processors.evaluation.nab.label_windows`: a run of labelled rows
is one anomaly, widened on each side by half of a tenth of the file shared among its
anomalies; windows starting in the probation period dropped, overlaps merged). It then
scores the corpus with everything chosen on the NAB dev split (`benchmarks.nab_heldout`):
nothing is chosen on this corpus.

Rerun: `uv run python -m benchmarks.corpus_cloud_monitoring [--from PATH]` (PATH: a clone
or bare git directory of the dataset; without it the pinned commit is downloaded from
GitHub), then or instead `uv run python -m benchmarks.nab_cv --corpus $TOCSIN_CORPUS_DIR`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from processors.evaluation.nab import label_windows

REPO = "microsoft/cloud-monitoring-dataset"
COMMIT = "6a07a53c2fac495fb6831811df4c980d6c04bd10"
OUT = Path(os.environ.get("TOCSIN_CORPUS_DIR", "/tmp/tocsin-corpus-cloud-monitoring"))


def from_tar(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            # every path starts with one folder (<repo>-<commit>/ in GitHub's tarballs)
            fh = tar.extractfile(member) if member.isfile() else None
            if fh is not None and "/" in member.name:
                out[member.name.split("/", 1)[1]] = fh.read()
    return out


def source_files(source: Path | None) -> dict[str, bytes]:
    """The dataset's files by path (data/<category>/<file>.csv, LICENSE)."""
    if source is not None and (source / "data").is_dir():
        return {
            str(p.relative_to(source)): p.read_bytes()
            for p in [*source.glob("data/*/*.csv"), source / "LICENSE"]
        }
    if source is not None:
        tar = subprocess.run(
            [
                "git",
                "--git-dir",
                str(source),
                "archive",
                "--prefix=dataset/",
                COMMIT,
                "data",
                "LICENSE",
            ],
            capture_output=True,
            check=True,
        ).stdout
        return from_tar(tar)
    url = f"https://codeload.github.com/{REPO}/tar.gz/{COMMIT}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return from_tar(response.read())


def _timestamp(raw: str) -> str:
    at = datetime.fromisoformat(raw.strip().strip('"').replace("Z", "+00:00"))
    return (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M:%S")


def convert(text: str) -> tuple[list[str], list[str], list[int]]:
    """Timestamps, values (nan where missing) and labels of one of the dataset's files."""
    rows = list(csv.DictReader(io.StringIO(text)))
    ts = [_timestamp(r["TimeStamp"]) for r in rows]
    values = [r["Value"].strip() or "nan" for r in rows]
    labels = [int(r["Label"]) for r in rows]
    return ts, values, labels


def prepare(files: dict[str, bytes], out: Path) -> tuple[int, int]:
    """Write the corpus in NAB's layout; the number of files and of windows."""
    windows: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(p for p in files if p.startswith("data/") and p.endswith(".csv")):
        _, category, name = path.split("/")
        ts, values, labels = convert(files[path].decode())
        target = out / "data" / category / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value"])
            writer.writerows(zip(ts, values, strict=True))
        windows[f"{category}/{name}"] = label_windows(ts, labels)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "combined_windows.json").write_text(json.dumps(windows, indent=1))
    (out / "LICENSE").write_bytes(files["LICENSE"])
    (out / "SOURCE").write_text(f"https://github.com/{REPO} at {COMMIT}\n")
    return len(windows), sum(len(w) for w in windows.values())


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not (OUT / "labels" / "combined_windows.json").is_file():
        source = Path(argv[argv.index("--from") + 1]) if "--from" in argv else None
        try:
            files = source_files(source)
        except (OSError, subprocess.CalledProcessError) as e:
            print(
                f"could not read {REPO} ({e}); clone it and pass --from PATH/TO/CLONE",
                file=sys.stderr,
            )
            return 1
        n, w = prepare(files, OUT)
        print(f"prepared {n} files, {w} windows from {REPO}@{COMMIT[:7]} in {OUT}")
    from benchmarks.nab_cv import main as nab_cv

    return nab_cv(["--corpus", str(OUT), *(a for a in argv if a == "--per-file")])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
