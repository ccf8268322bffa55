"""Each tenant's own world: its configuration, on-call overrides and suppressions.

An alert, a silence or an override belongs to exactly one tenant, and the core only
ever looks things up in that tenant's world: routing, escalation, schedules and users
from its configuration; silences, maintenance windows and inhibition sources from its
suppressions. No lookup falls back to another tenant, so nothing of one tenant can
mute, inhibit or page for another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from processors.incidents.oncall import with_overrides
from processors.incidents.suppression import Suppressions
from schemas.commands import OnCallOverride
from schemas.config.models import Config

DEFAULT = "default"


def tenant_group_key(tenant: str, key: str) -> str:
    """A group key with its tenant first: `<tenant>/<route>|<labels>`. The provider's own
    tenant keeps the keys it had before tenants existed (its groups survive an upgrade);
    a route path never contains '/', so the two forms never meet."""
    return key if tenant == DEFAULT else f"{tenant}/{key}"


class Tenants:
    """Configurations (with run-time overrides applied) and suppressions by tenant."""

    def __init__(self, configs: Mapping[str, Config],
                 sups: Mapping[str, Suppressions] | None = None) -> None:  # fmt: skip
        self._base = dict(configs)
        self._configs = dict(configs)
        self._sups = {t: Suppressions.from_config(c) for t, c in configs.items()}
        self._sups.update(sups or {})
        self._overrides: dict[str, dict[str, OnCallOverride]] = {}
        self._empty: dict[str, Config] = {}

    @classmethod
    def single(cls, cfg: Config, sup: Suppressions | None = None) -> Tenants:
        """One tenant: the installation before tenants existed."""
        return cls({cfg.tenant: cfg}, {cfg.tenant: sup} if sup is not None else None)

    def known(self, tenant: str) -> bool:
        return tenant in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def config(self, tenant: str) -> Config:
        """The tenant's configuration; a tenant no longer configured gets an empty one
        (its open groups page nobody rather than another tenant's people)."""
        cfg = self._configs.get(tenant)
        if cfg is None:
            cfg = self._empty.get(tenant)
            if cfg is None:
                cfg = self._empty[tenant] = Config(tenant=tenant)
        return cfg

    def suppressions(self, tenant: str) -> Suppressions:
        sup = self._sups.get(tenant)
        if sup is None:
            sup = self._sups[tenant] = Suppressions()
        return sup

    def override(self, tenant: str, ident: str, override: OnCallOverride | None) -> None:
        """An on-call override of the tenant's schedules made at run time (None: gone)."""
        if tenant not in self._base:
            return
        mine = self._overrides.setdefault(tenant, {})
        if override is None:
            mine.pop(ident, None)
        else:
            mine[ident] = override
        self._configs[tenant] = with_overrides(self._base[tenant], mine.values())

    def expire(self, now: datetime) -> None:
        for sup in self._sups.values():
            sup.expire(now)
