"""Every third-party module that tocsin, its harness and its benchmarks import is a
declared dependency in pyproject.toml, so a fresh install from the lock file has it;
deptry reads the imports and the declarations (its settings are in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_is_a_declared_dependency() -> None:
    deptry = Path(sys.executable).parent / "deptry"
    done = subprocess.run([str(deptry), "--no-ansi", "."], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
