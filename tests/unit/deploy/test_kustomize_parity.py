"""The Python renderer the other tests use agrees with the real kustomize (the one built
into kubectl, or a standalone kustomize), generated-name hashes aside."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.unit.deploy.conftest import OVERLAY

HASHED = re.compile(
    r"^(tocsin-(?:env|rules|config|slack|pagerduty|gateway|kafka|store|console))-[a-z0-9]{10}$"
)


def _kustomize_output() -> str:
    flags = ["--load-restrictor", "LoadRestrictionsNone", str(OVERLAY)]
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", *flags]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", *flags]
    else:
        pytest.skip("neither kustomize nor kubectl is installed")
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout


def _normalise(value: Any) -> Any:
    """Generated names end in a content hash; compare them by their stem."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str):
        return HASHED.sub(r"\1-HASH", value)
    return value


def test_renderer_matches_kustomize(overlay: list[dict[str, Any]]) -> None:
    theirs = [d for d in yaml.safe_load_all(_kustomize_output()) if d]

    def keyed(docs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {(d["kind"], d["metadata"]["name"]): d for d in _normalise(docs)}

    mine_by_key, theirs_by_key = keyed(overlay), keyed(theirs)
    assert sorted(mine_by_key) == sorted(theirs_by_key)
    for key, doc in mine_by_key.items():
        assert doc == theirs_by_key[key], key
