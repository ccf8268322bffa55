"""Tenants' intake credentials in the installation: digests only, one owner each, and
errors that name the tenant and the field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.config import Config, load_installation
from schemas.errors import ConfigError


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tenant(root: Path, tid: str, text: str) -> None:
    (root / "tenants" / tid).mkdir(parents=True)
    (root / "tenants" / tid / "tocsin.yaml").write_text(text)


def test_a_credential_listed_by_two_tenants_fails_config_check(tmp_path: Path) -> None:
    (tmp_path / "tocsin.yaml").write_text("users: []\n")
    tenant(tmp_path, "acme", f"intake: {{tokens: [{{sha256: {sha('t1')}}}]}}\n")
    tenant(tmp_path, "beta", f"intake: {{pagerduty_keys: [{sha('t1')}]}}\n")
    with pytest.raises(ConfigError) as err:
        load_installation([tmp_path])
    assert "tenants/beta: intake.pagerduty_keys: sha256 " in str(err.value)
    assert "listed by tenant 'acme' too" in str(err.value)


def test_intake_takes_digests_and_mapped_ids_and_names_a_bad_one(tmp_path: Path) -> None:
    (tmp_path / "tocsin.yaml").write_text("users: []\n")
    tenant(tmp_path, "acme", "intake:\n  tokens: [{sha256: " + sha("t") + ", only: zabbix}]\n"
           "  sns_topics: ['arn:aws:sns:*:111111111111:*']\n  slack_teams: [T0ACME01]\n"
           "  quota: {items_per_s: 100}\n")  # fmt: skip
    inst = load_installation([tmp_path])
    assert inst.tenants["acme"].intake.quota.items_per_s == 100
    with pytest.raises(ValidationError, match=r"intake\.tokens\.0\.sha256"):
        Config.model_validate({"intake": {"tokens": [{"sha256": "my-plain-token"}]}})
    with pytest.raises(ValidationError, match=r"intake\.tokens\.0\.only"):
        Config.model_validate({"intake": {"tokens": [{"sha256": sha("x"), "only": "ssh"}]}})
    with pytest.raises(ValidationError, match=r"intake\.slack_teams\.0"):
        Config.model_validate({"intake": {"slack_teams": ["acme-workspace"]}})
