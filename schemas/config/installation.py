"""One installation, many tenants: the provider's configuration plus one per customer.

A configuration directory holds the provider's own files (its staff, the shared rule
pack's settings, the `default` tenant's routing) and `tenants/<id>/` per customer: the
same `Config` schema in `tocsin.yaml`, and optionally `rules/*.yaml` that add to the
shared rule pack for that tenant's samples only. A single file or a directory without
`tenants/` loads as the `default` tenant alone, as before tenants existed.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas.config.intake import owners
from schemas.config.loader import config_files, load_config
from schemas.config.models import Config
from schemas.errors import ConfigError
from schemas.rules import Rule, RuleFile, load_rule_files

DEFAULT = "default"
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TENANTS_DIR = "tenants"
RULES_DIR = "rules"


class Installation(BaseModel):
    """Every tenant's configuration by id (`default` is the provider's own) and the rules
    each tenant adds to the shared pack."""

    model_config = ConfigDict(frozen=True)

    tenants: dict[str, Config]
    rules: dict[str, list[Rule]] = Field(default_factory=dict)

    @property
    def provider(self) -> Config:
        return self.tenants[DEFAULT]

    def tenant(self, tenant: str) -> Config | None:
        return self.tenants.get(tenant)

    @classmethod
    def single(cls, cfg: Config) -> Installation:
        """An installation of one configuration (tests and single-tenant callers)."""
        return cls(tenants={cfg.tenant: cfg})


def check_tenant_id(tenant: str) -> str | None:
    """Why `tenant` is not a tenant id, or None if it is one."""
    if TENANT_ID.fullmatch(tenant):
        return None
    return (f"{tenant!r} is not a tenant id (lowercase letters, digits and '-', starting "
            "with a letter or digit, at most 63)")  # fmt: skip


def tenant_dirs(paths: list[Path]) -> list[Path]:
    """The `tenants/<id>` directories under the given configuration directories."""
    out: list[Path] = []
    for path in paths:
        root = path / TENANTS_DIR
        if path.is_dir() and root.is_dir():
            out += [d for d in sorted(root.iterdir()) if not d.name.startswith(".")]
    return out


def load_installation(paths: list[Path]) -> Installation:
    """Load the provider's configuration and every tenant's; ConfigError lists every
    problem of every tenant, each naming the file and the path inside it."""
    errors: list[str] = []
    tenants: dict[str, Config] = {}
    rules: dict[str, list[Rule]] = {}
    where: dict[str, Path] = {}
    try:
        tenants[DEFAULT] = load_config(paths)
    except ConfigError as exc:
        errors.append(str(exc))
    for d in tenant_dirs(paths):
        tid = d.name
        if not d.is_dir():
            errors.append(f"{d}: expected a directory per tenant (tenants/<id>/tocsin.yaml)")
            continue
        if tid == DEFAULT:
            errors.append(f"{d}: 'default' is the provider's own tenant: its configuration "
                          f"is the files beside {d.parent}")  # fmt: skip
            continue
        if why := check_tenant_id(tid):
            errors.append(f"{d}: bad tenant directory name: {why}")
            continue
        if tid in where:
            errors.append(f"{d}: tenant {tid!r} is also configured in {where[tid]}")
            continue
        where[tid] = d
        if not config_files(d):
            errors.append(f"{d}: tenant {tid!r} has no tocsin.yaml")
            continue
        try:
            tenants[tid] = load_config([d], tenant=tid)
        except ConfigError as exc:
            errors.append(str(exc))
        if (d / RULES_DIR).is_dir() and any((d / RULES_DIR).glob("*.y*ml")):
            try:
                own = load_rule_files([d / RULES_DIR]).rules
                rules[tid] = [r.model_copy(update={"tenant": tid}) for r in own]
            except ConfigError as exc:
                errors.append(str(exc))
    errors += _across(tenants, where)
    if errors:
        raise ConfigError("\n".join(errors))
    return Installation(tenants=tenants, rules=rules)


def _across(tenants: dict[str, Config], where: dict[str, Path]) -> list[str]:
    """What no single tenant's file can check: references to tenants, shared secrets."""
    errors: list[str] = []
    provider = tenants.get(DEFAULT)
    if provider is not None:
        for i, tok in enumerate(provider.api_tokens):
            if tok.tenant not in tenants and tok.tenant not in where:
                errors.append(f"api_tokens[{i}]: unknown tenant {tok.tenant!r} (the provider's "
                              f"configuration; tenants: {', '.join(sorted(tenants))})")  # fmt: skip
    owner: dict[str, str] = {}
    for tid, cfg in sorted(tenants.items()):
        for i, tok in enumerate(cfg.api_tokens):
            if tok.sha256 in owner and owner[tok.sha256] != tid:
                place = where.get(tid, "the provider's configuration")
                first = owner[tok.sha256]
                errors.append(f"{place}: api_tokens[{i}]: the same token is listed by tenant "
                              f"{first!r}: a credential belongs to one tenant")  # fmt: skip
            owner.setdefault(tok.sha256, tid)
    try:  # intake credentials (gateway tokens, routing keys, SNS topics, Slack): one owner
        owners({tid: cfg.intake for tid, cfg in tenants.items()})
    except ConfigError as exc:
        errors.append(str(exc))
    return errors


def rule_pack(shared: RuleFile, inst: Installation) -> RuleFile:
    """The shared pack plus every tenant's own rules (each seeing its tenant's samples
    only). Rule names stay unique across the pack: alerts and engine state name rules."""
    taken = {r.name: "the shared pack" for r in shared.rules}
    errors: list[str] = []
    rules = list(shared.rules)
    for tid, own in sorted(inst.rules.items()):
        for r in own:
            if r.name in taken:
                errors.append(f"{TENANTS_DIR}/{tid}/{RULES_DIR}: rule {r.name}: the name is "
                              f"taken by {taken[r.name]} (prefix it with the tenant)")  # fmt: skip
                continue
            taken[r.name] = f"tenant {tid!r}"
            rules.append(r)
    if errors:
        raise ConfigError("\n".join(errors))
    return RuleFile(settings=shared.settings, rules=rules)
