"""status.yaml: loaded next to the tenant's config, errors naming tenant, file and path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from schemas.config.installation import load_installation
from schemas.errors import ConfigError
from schemas.status import UpdateSpec
from streams.api.auth import digest
from streams.cli.main import cli
from streams.status.config import load_status_pages
from streams.status.demo import write_status_page

GOOD = """
components:
  - {id: shop, name: Shop, group: Storefront, services: [web]}
pages:
  - {id: public, audience: public, title: Acme status}
"""


def _dir(tmp_path: Path, status: str) -> Path:
    (tmp_path / "tocsin.yaml").write_text((EXAMPLE_CONFIG / "tocsin.yaml").read_text())
    (tmp_path / "status.yaml").write_text(status)
    return tmp_path


def _services() -> list[str]:
    return [s.id for s in load_config([EXAMPLE_CONFIG]).services]


def test_a_status_file_next_to_the_config_loads_and_the_config_ignores_it(tmp_path: Path) -> None:
    service = _services()[0]
    d = _dir(tmp_path, GOOD.replace("[web]", f"[{service}]"))
    cfg = load_config([d])
    pages = load_status_pages([d], {"default": cfg})
    assert [p.id for p in pages["default"].pages] == ["public"]
    assert pages["default"].components[0].services == [service]


def test_a_component_of_an_unknown_service_names_tenant_file_and_path(tmp_path: Path) -> None:
    d = _dir(tmp_path, GOOD.replace("[web]", "[no-such-service]"))
    with pytest.raises(ConfigError) as err:
        load_status_pages([d], {"default": load_config([d])})
    msg = str(err.value)
    assert "tenant default" in msg and str(d / "status.yaml") in msg
    assert "components[0] (shop).services[0]: unknown service 'no-such-service'" in msg


def test_a_page_of_an_unknown_audience_or_component_is_refused(tmp_path: Path) -> None:
    service = _services()[0]
    bad = GOOD.replace("[web]", f"[{service}]").replace("audience: public", "audience: everyone")
    d = _dir(tmp_path, bad)
    with pytest.raises(ConfigError, match=r"pages\[0\]\.audience"):
        load_status_pages([d], {"default": load_config([d])})
    bad = (
        GOOD.replace("[web]", f"[{service}]") + "  - {id: x, audience: public, title: X, "
        "components: [nope]}\n"
    )
    d = _dir(tmp_path, bad)
    with pytest.raises(ConfigError, match=r"pages\[1\]\.components\[0\]: unknown component"):
        load_status_pages([d], {"default": load_config([d])})


def test_config_check_validates_the_status_file(tmp_path: Path) -> None:
    d = _dir(tmp_path, GOOD.replace("[web]", "[no-such-service]"))
    result = CliRunner().invoke(cli, ["config", "check", str(d)])
    assert result.exit_code == 1
    assert "unknown service 'no-such-service'" in result.output
    d = _dir(tmp_path, GOOD.replace("[web]", f"[{_services()[0]}]"))
    result = CliRunner().invoke(cli, ["config", "check", str(d)])
    assert result.exit_code == 0, result.output
    assert "1 status pages" in result.output


def test_an_update_of_an_unknown_audience_is_refused() -> None:
    with pytest.raises(ValueError, match="audiences"):
        UpdateSpec.model_validate({"incident_id": "i", "status": "identified", "message": "m",
                                   "audiences": ["everyone"], "author": "a"})  # fmt: skip


def _installation(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, d)
    return d


def test_each_tenant_has_its_own_pages_checked_against_its_own_services(tmp_path: Path) -> None:
    d = _installation(tmp_path)
    result = CliRunner().invoke(cli, ["config", "check", str(d)])
    assert result.exit_code == 0, result.output
    assert "tenant acme:" in result.output and "3 status pages" in result.output
    acme = d / "tenants" / "acme" / "status.yaml"
    # a service of the provider is no service of acme's
    acme.write_text(acme.read_text().replace("services: [blog]", "services: [checkout]"))
    result = CliRunner().invoke(cli, ["config", "check", str(d)])
    assert result.exit_code == 1
    assert f"tenant acme: {acme}: components[2] (blog).services[0]: unknown service " \
           "'checkout'" in result.output  # fmt: skip


def test_the_demo_sets_up_a_tenants_pages(tmp_path: Path) -> None:
    d = _installation(tmp_path)
    inst = load_installation([d])
    path, token = write_status_page(d / "tenants" / "acme", inst.tenants["acme"], "Acme",
                                    tenant="acme")  # fmt: skip
    pages = load_status_pages([d], inst.tenants)["acme"]
    assert path == d / "tenants" / "acme" / "status.yaml"
    assert [p.audience for p in pages.pages] == ["public", "private", "internal"]
    assert {s for c in pages.components for s in c.services} == {"shop", "blog"}
    assert pages.pages[1].tokens == [digest(token)] and token not in path.read_text()
