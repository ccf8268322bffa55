"""The gateway's per-tenant quota is on by default in an installation of several tenants
(a tenant past two seconds' worth of 10,000 items/s is answered 429, the others pass), off in a
single-tenant one, off for a tenant whose config says 0, and set or turned off for every
tenant by `tocsin run gateway`'s flags."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import orjson
import pytest

from schemas.config import Config
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, STAMP, make_gateway, serve
from tests.integration.connectors.test_gateway_start import _env, running

ACME, BETA = "acme-intake-token-0123456789", "beta-intake-token-0123456789"
# the most one request may carry; two of them are two seconds of the shared default
FULL = 10_000


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def samples(n: int) -> bytes:
    line = orjson.dumps({"name": "cpu", "value": 1.0, "time": STAMP})
    return b"\n".join([line] * n)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def frozen() -> list[float]:
    # the quotas' clock stands still: no bucket refills between two requests, however
    # slowly the machine answers them
    return [1000.0]


def test_several_tenants_a_tenant_past_the_default_quota_gets_429_and_the_others_pass(
    kafka_settings: KafkaSettings, topics: Catalog, frozen: list[float]
) -> None:
    tenants = {
        "default": Config(),
        "acme": Config.model_validate({"tenant": "acme", "intake": {
            "tokens": [{"sha256": sha(ACME)}]}}),
        "beta": Config.model_validate({"tenant": "beta", "intake": {
            "tokens": [{"sha256": sha(BETA)}], "quota": {"items_per_s": 0}}}),
    }  # fmt: skip
    gw = make_gateway(kafka_settings, tenants=tenants, quota_clock=lambda: frozen[0])
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(2):
            r = c.post("/v1/metrics", content=samples(FULL), headers=bearer(ACME))
            assert r.status_code == 202, r.text
        over = c.post("/v1/metrics", content=samples(1), headers=bearer(ACME))
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1, over.text
        assert c.post("/v1/metrics", content=samples(1000), headers=AUTH).status_code == 202, (
            "the provider's own tenant has its own bucket"
        )
        for _ in range(3):  # beta's config turns its quota off
            r = c.post("/v1/metrics", content=samples(FULL), headers=bearer(BETA))
            assert r.status_code == 202, r.text
        text = c.get("/metrics").text
    assert 'tocsin_gateway_tenant_throttled_total{quota="items",tenant="acme"} 1.0' in text
    assert 'tocsin_gateway_tenant_throttled_total{quota="items",tenant="beta"}' not in text
    assert 'tocsin_gateway_tenant_items_total{tenant="beta"} 30000.0' in text


def test_a_single_tenant_installation_has_no_quota(
    kafka_settings: KafkaSettings, topics: Catalog, frozen: list[float]
) -> None:
    gw = make_gateway(kafka_settings, tenants={"default": Config()},
                      quota_clock=lambda: frozen[0])  # fmt: skip
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(3):
            r = c.post("/v1/metrics", content=samples(FULL), headers=AUTH)
            assert r.status_code == 202, r.text


def _quota_logged(env: dict[str, str], *args: str) -> str:
    """What `tocsin run gateway` says its tenant quota is, once it is ready."""
    output: list[str] = []
    with running(env, *args, output=output):
        pass
    out = output[0]
    lines = [orjson.loads(x) for x in out.splitlines() if '"gateway_listening"' in x]
    assert len(lines) == 1, out[-2000:]
    quota: str = lines[0]["tenant_quota"]
    return quota


def test_the_gateway_command_turns_the_quota_on_for_several_tenants_and_its_flags_win(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "tocsin.yaml").write_text("{}\n")
    (tmp_path / "tenants" / "acme").mkdir(parents=True)
    (tmp_path / "tenants" / "acme" / "tocsin.yaml").write_text(
        f"intake:\n  tokens: [{{sha256: {sha(ACME)}}}]\n")  # fmt: skip
    env = _env(kafka_settings, TOCSIN_GATEWAY_TOKENS="provider-token")
    several = str(tmp_path)
    assert _quota_logged(env, "--config", several) == ("300 requests/s, 10000 items/s, burst 2 s")
    assert _quota_logged(env, "--config", several, "--tenant-items", "0", "--tenant-rate",
                         "0") == "off"  # fmt: skip
    assert _quota_logged({**env, "TOCSIN_GATEWAY_TENANT_ITEMS": "500"}, "--config",
                         several) == "300 requests/s, 500 items/s, burst 2 s"  # fmt: skip
    assert _quota_logged(env, "--config", str(tmp_path / "tocsin.yaml")) == "off", (
        "one tenant: nobody to protect it from"
    )
