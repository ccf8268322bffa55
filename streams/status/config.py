"""`status.yaml`: a tenant's status pages, next to its `tocsin.yaml` (the provider's own,
tenant `default`, next to the top-level one; a customer's in `tenants/<id>/`).

Checked against the tenant's configuration: every service a component maps to must be
one of the tenant's services. Errors name the tenant, the file and the path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.config import Config
from schemas.errors import ConfigError
from schemas.status import StatusConfig

NAMES = ("status.yaml", "status.yml")
DEFAULT = "default"


def status_file(paths: Sequence[Path], tenant: str) -> Path | None:
    """The tenant's status.yaml under the config paths, or None when it has none."""
    for p in paths:
        base = p if p.is_dir() else p.parent
        if tenant != DEFAULT:
            base = base / "tenants" / tenant
        for name in NAMES:
            if (base / name).is_file():
                return base / name
    return None


def load_status(file: Path, cfg: Config, tenant: str) -> StatusConfig:
    where = f"tenant {tenant}: {file}"
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    try:
        status = StatusConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {loc.replace('.[', '[')}: {msg}" if loc else
                         f"{where}: {msg}")  # fmt: skip
        raise ConfigError("\n".join(lines)) from None
    known = {s.id for s in cfg.services}
    for i, c in enumerate(status.components):
        for j, sid in enumerate(c.services):
            if sid not in known:
                raise ConfigError(f"{where}: components[{i}] ({c.id}).services[{j}]: unknown "
                                  f"service {sid!r} (the tenant's services: "
                                  f"{', '.join(sorted(known)) or 'none'})")  # fmt: skip
    return status


def load_status_pages(
    paths: Sequence[Path], tenants: Mapping[str, Config]
) -> dict[str, StatusConfig]:
    """Every tenant's status pages (tenants without a status.yaml have none)."""
    out: dict[str, StatusConfig] = {}
    for tenant, cfg in tenants.items():
        file = status_file(paths, tenant)
        if file is not None:
            out[tenant] = load_status(file, cfg, tenant)
    return out
