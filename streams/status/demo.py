"""Set up a tenant's status pages in one call (the demo, a first try): a `status.yaml`
beside the tenant's `tocsin.yaml` with one component per service, grouped by team, and a
public, a private and an internal page. Returns where it wrote, and the private page's
token (its digest is in the file; the token itself is shown once)."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.config import Config
from streams.api.auth import new_token
from streams.status.config import load_status


def write_status_page(tenant_dir: Path, cfg: Config, title: str,
                      tenant: str = "default") -> tuple[Path, str]:  # fmt: skip
    """`tenant_dir`: the directory of the tenant's tocsin.yaml (the config directory for
    `default`, `tenants/<id>` for a customer). The pages are then at
    /status/<tenant>/public, /status/<tenant>/staff and /status/<tenant>/noc."""
    token, token_digest = new_token()
    doc = {
        "components": [{"id": s.id, "name": s.id.replace("-", " ").replace("_", " ").title(),
                        "group": s.team.title(), "services": [s.id]} for s in cfg.services],
        "pages": [
            {"id": "public", "audience": "public", "title": title},
            {"id": "staff", "audience": "private", "title": f"{title} (staff)",
             "tokens": [token_digest]},
            {"id": "noc", "audience": "internal", "title": f"{title} (provider)"},
        ],
    }  # fmt: skip
    path = tenant_dir / "status.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    load_status(path, cfg, tenant)  # what it wrote loads, or this fails loudly here
    return path, token
