"""The installation loader: the provider's configuration plus one directory per tenant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas import ConfigError
from schemas.config import load_config, load_installation
from schemas.config.installation import rule_pack
from schemas.rules import load_rule_files
from streams.cli.main import cli

EXAMPLE = Path("examples/config")
TOKEN = "ab" * 32

ACME = """\
users: [{id: erin, name: Erin}]
teams: [{id: web, members: [erin], slack_channel: "#acme-web"}]
services:
  - {id: shop, team: web}
  - {id: blog, team: web}
  - {id: api, team: x}
"""


def _installation(tmp_path: Path, acme: str = ACME) -> Path:
    root = tmp_path / "config"
    shutil.copytree(EXAMPLE, root)
    shutil.rmtree(root / "tenants")
    (root / "tenants" / "acme").mkdir(parents=True)
    (root / "tenants" / "acme" / "tocsin.yaml").write_text(acme)
    return root


def test_the_example_loads_the_provider_and_a_second_tenant() -> None:
    inst = load_installation([EXAMPLE])
    assert set(inst.tenants) == {"default", "acme"}
    assert inst.provider.tenant == "default"
    assert inst.provider.team("platform") is not None
    acme = inst.tenants["acme"]
    assert acme.tenant == "acme"
    assert acme.team("web") is not None and acme.team("platform") is None
    assert [r.name for r in inst.rules["acme"]] == ["acme_checkout_latency"]
    assert "default" not in inst.rules


def test_a_single_file_or_a_plain_directory_is_the_default_tenant_alone(tmp_path: Path) -> None:
    inst = load_installation([EXAMPLE / "tocsin.yaml"])
    assert list(inst.tenants) == ["default"]
    assert inst.provider == load_config([EXAMPLE])


def test_an_error_names_the_tenant_file_and_the_path_inside_it(tmp_path: Path) -> None:
    root = _installation(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_installation([root])
    file = root / "tenants" / "acme" / "tocsin.yaml"
    assert f"{file}: services[2] (api): unknown team 'x'" in str(err.value)


def test_every_tenant_is_checked_and_every_error_reported(tmp_path: Path) -> None:
    root = _installation(tmp_path)
    (root / "tenants" / "beta").mkdir()
    (root / "tenants" / "beta" / "tocsin.yaml").write_text("teams: [{id: t, members: [nobody]}]\n")
    result = CliRunner().invoke(cli, ["config", "check", str(root)])
    assert result.exit_code == 1
    assert "tenants/acme/tocsin.yaml: services[2] (api): unknown team 'x'" in result.output
    assert "tenants/beta/tocsin.yaml: teams[0] (t): unknown user 'nobody'" in result.output


def test_bad_tenant_directory_names_are_refused(tmp_path: Path) -> None:
    root = _installation(tmp_path, ACME.replace("  - {id: api, team: x}\n", ""))
    for bad in ("Acme", "acme_corp", "-acme", "default"):
        (root / "tenants" / bad).mkdir()
        (root / "tenants" / bad / "tocsin.yaml").write_text("users: []\n")
        with pytest.raises(ConfigError) as err:
            load_installation([root])
        assert f"tenants/{bad}" in str(err.value)
        assert ("not a tenant id" in str(err.value)) or ("provider's own tenant" in str(err.value))
        shutil.rmtree(root / "tenants" / bad)
    (root / "tenants" / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"tenant 'empty' has no tocsin\.yaml"):
        load_installation([root])


def test_a_tenant_file_cannot_claim_another_tenant(tmp_path: Path) -> None:
    root = _installation(tmp_path, "tenant: beta\nusers: []\n")
    with pytest.raises(ConfigError, match="tenant: 'beta' is not the tenant 'acme'"):
        load_installation([root])


def test_api_tokens_of_a_tenant_act_for_that_tenant_only(tmp_path: Path) -> None:
    good = "users: [{id: erin, name: Erin}]\napi_tokens: [{user: erin, sha256: " + TOKEN + "}]\n"
    inst = load_installation([_installation(tmp_path / "a", good)])
    assert inst.tenants["acme"].api_tokens[0].tenant == "acme"
    other = good.replace("sha256:", "tenant: beta, sha256:")
    with pytest.raises(ConfigError, match=r"api_tokens\[0\]: tenant 'beta' is not this"):
        load_installation([_installation(tmp_path / "b", other)])
    provider = good.replace("sha256:", "role: provider, sha256:")
    with pytest.raises(ConfigError, match="role 'provider' belongs in the provider's own"):
        load_installation([_installation(tmp_path / "c", provider)])


def test_a_token_listed_by_two_tenants_or_for_an_unknown_tenant_is_an_error(
    tmp_path: Path,
) -> None:
    acme = "users: [{id: erin, name: Erin}]\napi_tokens: [{user: erin, sha256: " + TOKEN + "}]\n"
    root = _installation(tmp_path, acme)
    provider = root / "tocsin.yaml"
    base = provider.read_text()
    provider.write_text(base + f"api_tokens: [{{user: alice, role: admin, sha256: {TOKEN}}}]\n")
    with pytest.raises(ConfigError, match="the same token is listed by tenant"):
        load_installation([root])
    other = "cd" * 32
    provider.write_text(base + f"api_tokens: [{{user: alice, tenant: nope, sha256: {other}}}]\n")
    with pytest.raises(ConfigError, match="api_tokens\\[0\\]: unknown tenant 'nope'"):
        load_installation([root])
    provider.write_text(base + f"api_tokens: [{{user: alice, tenant: acme, sha256: {other}}}]\n")
    assert load_installation([root]).provider.api_tokens[0].tenant == "acme"


def test_a_tenants_bad_rule_names_its_file(tmp_path: Path) -> None:
    root = _installation(tmp_path, "users: []\n")
    (root / "tenants" / "acme" / "rules").mkdir()
    bad = root / "tenants" / "acme" / "rules" / "r.yaml"
    bad.write_text(
        "rules: [{name: x, signal: {metric: m}, aggregation: avg, "
        "window: {size: 1m}, condition: {op: '>', threshold: 1, for: 5 min}}]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_installation([root])
    assert f"{bad}: rule x field condition.for" in str(err.value)


def test_the_status_pages_file_beside_a_config_is_not_read_as_config(tmp_path: Path) -> None:
    root = _installation(tmp_path, "users: []\n")
    (root / "status.yaml").write_text("pages: [{id: public}]\n")
    (root / "tenants" / "acme" / "status.yaml").write_text("pages: [{id: public}]\n")
    assert set(load_installation([root]).tenants) == {"default", "acme"}


def test_a_tenants_rules_join_the_shared_pack_for_its_samples_only(tmp_path: Path) -> None:
    shared = load_rule_files([Path("rules/default.yaml")])
    pack = rule_pack(shared, load_installation([EXAMPLE]))
    mine = [r for r in pack.rules if r.tenant is not None]
    assert [(r.name, r.tenant) for r in mine] == [("acme_checkout_latency", "acme")]
    assert len(pack.rules) == len(shared.rules) + 1
    assert all(r.tenant is None for r in pack.rules[: len(shared.rules)])
    # the tenant is no part of a rule's serialised form: shared rules' state signatures
    # are what they were before tenants existed
    assert "tenant" not in mine[0].model_dump_json()


def test_a_tenant_rule_may_not_take_a_shared_name_nor_claim_a_tenant(tmp_path: Path) -> None:
    root = _installation(tmp_path, "users: []\n")
    rules = root / "tenants" / "acme" / "rules"
    rules.mkdir()
    text = Path("rules/default.yaml").read_text()
    (rules / "copy.yaml").write_text(text)
    shared = load_rule_files([Path("rules/default.yaml")])
    with pytest.raises(ConfigError, match="rule cpu_saturation_critical: the name is taken by"):
        rule_pack(shared, load_installation([root]))
    result = CliRunner().invoke(cli, ["config", "check", str(root), "--rules", "rules/"])
    assert result.exit_code == 1 and "tenants/acme/rules: rule cpu_high_warning" in result.output
    (rules / "copy.yaml").write_text(
        text.replace("  - name: cpu_saturation_critical\n", "  - name: x\n    tenant: beta\n", 1)
    )
    with pytest.raises(ConfigError, match="rule x field tenant: not written in a rule file"):
        load_installation([root])
