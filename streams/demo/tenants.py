"""The demo's two tenants: the provider's own (`default`, the story's fleet) and `acme`, a
customer with its own people, routing and status pages (examples/config/tenants/acme).

The run's configuration directory is the example one with every incident timer scaled
to the demo's speed, and an intake token for acme's monitoring: after the story, acme's
Alertmanager posts a critical alert about its shop to the gateway with that token, the
gateway stamps it with acme's tenant, and acme's public status page shows the shop down
until the incident resolves, next to the provider's console.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

from schemas.config import load_config
from streams.api.auth import new_token
from streams.demo.timescale import scaled_config

EXAMPLES = Path("examples/config")
ACME = "acme"
ACME_PAGE = f"/status/{ACME}/public"


def write_config(workdir: Path, speed: float) -> tuple[Path, str]:
    """The run's configuration directory, and the token acme's monitoring sends with."""
    root = workdir / "config"
    tenant = root / "tenants" / ACME
    tenant.mkdir(parents=True, exist_ok=True)
    provider = EXAMPLES / "tocsin.yaml"
    (root / "tocsin.yaml").write_text(
        scaled_config(provider.read_text(), load_config([provider]), speed)
    )
    source = EXAMPLES / "tenants" / ACME
    text = scaled_config((source / "tocsin.yaml").read_text(),
                         load_config([source], tenant=ACME), speed)  # fmt: skip
    doc = yaml.safe_load(text)
    token, digest = new_token()
    doc["intake"] = {"tokens": [{"sha256": digest, "name": "acme's Alertmanager (demo)"}]}
    (tenant / "tocsin.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(source / "status.yaml", tenant / "status.yaml")
    if (source / "rules").is_dir():
        shutil.copytree(source / "rules", tenant / "rules", dirs_exist_ok=True)
    return root, token


def acme_alert(gateway: str, token: str) -> None:
    """acme's Alertmanager (Prometheus' API v2 shape) reports its shop down."""
    now = datetime.now(UTC)
    alert = [{"labels": {"alertname": "ShopDown", "service": "shop", "host": "shop-1",
                         "severity": "critical"},
              "annotations": {"summary": "acme's shop answers 503 to every request"},
              "startsAt": now.isoformat(),
              "endsAt": (now + timedelta(minutes=30)).isoformat()}]  # fmt: skip
    r = httpx.post(f"{gateway}/api/v2/alerts", json=alert, timeout=30,
                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    r.raise_for_status()


def wait_for_page(api: str, echo: Callable[[str], None], timeout: float = 120.0) -> bool:
    """Until acme's public page shows a component that is not operational."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            doc = httpx.get(f"{api}{ACME_PAGE}/index.json", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            doc = {}
        down = [c for c in doc.get("components", []) if c.get("state") != "operational"]
        if down:
            for c in down:
                echo(f"  {doc.get('title', ACME)}: {c['name']}: {c['state'].replace('_', ' ')}")
            return True
        time.sleep(0.5)
    echo(f"  acme's page still shows every component operational after {timeout:.0f} s")
    return False
