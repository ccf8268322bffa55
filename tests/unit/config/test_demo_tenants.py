"""The demo's configuration: two tenants, acme's timers scaled like the provider's, and
an intake token that only acme's digest matches."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from schemas.config import load_installation
from streams.demo.tenants import ACME, write_config


def test_the_demo_runs_the_example_installation_scaled_with_acme_able_to_send(
    tmp_path: Path,
) -> None:
    root, token = write_config(tmp_path, speed=10)
    inst = load_installation([root])
    assert set(inst.tenants) == {"default", ACME}
    acme = inst.tenants[ACME]
    assert [t.sha256 for t in acme.intake.tokens] == [hashlib.sha256(token.encode()).hexdigest()]
    assert inst.provider.intake.tokens == [], "the token is acme's alone"
    first = acme.escalation_policies[0].levels[0].timeout
    assert first == timedelta(seconds=30), "acme's 5m escalation at ten times the speed"
    assert (root / "tenants" / ACME / "status.yaml").is_file()
