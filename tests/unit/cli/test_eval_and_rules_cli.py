from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from streams.cli.main import cli


def _write_series(path: Path, n: int, spike: int) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = [f"2026-01-{1 + i // 288:02d} {(i % 288) * 5 // 60:02d}:{(i * 5) % 60:02d}:00"
              for i in range(n)]  # fmt: skip
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for i, ts in enumerate(stamps):
            w.writerow([ts, 500.0 if i == spike else 10.0 + (i % 7) * 0.1])
    return stamps


def test_eval_nab_writes_results_for_every_row_and_scores(tmp_path: Path) -> None:
    stamps = _write_series(tmp_path / "data" / "cat" / "one.csv", 1200, spike=900)
    labels = tmp_path / "windows.json"
    labels.write_text(json.dumps({"cat/one.csv": [[stamps[880], stamps[940]]]}))
    args = ["eval", "nab", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--labels", str(labels)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "cat" / "tocsin_one.csv").open()))
    assert len(rows) == 1200
    assert set(rows[0]) == {"timestamp", "value", "anomaly_score"}
    assert max(range(1200), key=lambda i: float(rows[i]["anomaly_score"])) == 900
    assert "standard" in result.output and "1/1" in result.output


def test_rules_check_names_file_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - name: cpu\n    signal: {kind: metric, metric: cpu}\n"
        "    window: {size: 1m}\n    condition: {op: '>', threshold: nan}\n"
    )
    result = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: rule cpu field condition.threshold" in result.output
    ok = CliRunner().invoke(cli, ["rules", "check", "rules/default.yaml"])
    assert ok.exit_code == 0
    assert "rules OK" in ok.output
