"""Which tenant a request belongs to, decided by its credential and nothing else.

Built once from the installation's tenants (each ``Config``'s ``intake:``): the
digests of their tokens and PagerDuty keys, their SNS topics and their Slack teams and
channels, each owned by exactly one tenant (``schemas.config.intake.owners`` refuses a
credential listed twice). A request may name the tenant it means (``?tenant=`` or the
``X-Tocsin-Tenant`` header, e.g. to have a misrouted sender fail loudly): one that
names another tenant than its credential's is refused, and so is one that names a
tenant the installation does not have.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from schemas.config import Config
from schemas.config.intake import owners
from schemas.errors import ConfigError
from streams.gateway.auth import DEFAULT_TENANT, Caller, TenantSecrets, digest
from streams.gateway.limits import TenantLimit
from streams.gateway.responses import json_response

CALLER = web.RequestKey("caller", Caller)
HEADER = "X-Tocsin-Tenant"


@dataclass(frozen=True)
class Tenancy:
    """The installation's tenants (id -> config) and who owns which credential."""

    configs: Mapping[str, Config] = field(default_factory=dict)
    secrets: TenantSecrets = field(default_factory=TenantSecrets)
    sns: tuple[tuple[re.Pattern[str], str], ...] = ()
    slack_teams: Mapping[str, str] = field(default_factory=dict)
    slack_channels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, configs: Mapping[str, Config], env_secrets: frozenset[str] = frozenset()
           ) -> Tenancy:  # fmt: skip
        """The credentials of every tenant; ``env_secrets`` (the environment's tokens and
        keys, the provider's) may not be listed by a tenant other than ``default``."""
        found = owners({t: c.intake for t, c in configs.items()})
        for secret in env_secrets:
            tenant = found.get(("secret", digest(secret)))
            if tenant is not None and tenant != DEFAULT_TENANT:
                raise ConfigError(f"tenants/{tenant}: intake: lists a token of the gateway's "
                                  "environment, which belongs to tenant 'default'")  # fmt: skip
        tokens = {t.sha256: (tenant, t.only) for tenant, c in configs.items()
                  for t in c.intake.tokens}  # fmt: skip
        keys = {k: tenant for tenant, c in configs.items() for k in c.intake.pagerduty_keys}
        sns = tuple((_arn_pattern(arn), tenant) for tenant, c in sorted(configs.items())
                    for arn in c.intake.sns_topics)  # fmt: skip
        teams = {t: tenant for tenant, c in configs.items() for t in c.intake.slack_teams}
        channels = {ch: tenant for tenant, c in configs.items() for ch in c.intake.slack_channels}
        return cls(dict(configs), TenantSecrets(tokens, keys), sns, teams, channels)

    def knows(self, tenant: str) -> bool:
        return tenant == DEFAULT_TENANT or tenant in self.configs

    def config(self, tenant: str) -> Config | None:
        return self.configs.get(tenant)

    def sns_tenant(self, arn: str) -> str | None:
        """The tenant whose ``intake.sns_topics`` lists ``arn`` (the first, by tenant id)."""
        return next((tenant for p, tenant in self.sns if p.fullmatch(arn)), None)

    def slack_tenant(self, team_id: str | None, channel_id: str | None) -> str | None:
        """A Slack request's tenant: its channel's, else its workspace's; None: unmapped."""
        if channel_id and channel_id in self.slack_channels:
            return self.slack_channels[channel_id]
        if team_id and team_id in self.slack_teams:
            return self.slack_teams[team_id]
        return None

    def limits(self, default: TenantLimit) -> dict[str, TenantLimit]:
        """Each tenant's quota: its ``intake.quota`` over the gateway's defaults."""
        out = {}
        for tenant, c in self.configs.items():
            q = c.intake.quota
            if q.requests_per_s is None and q.items_per_s is None and q.burst_s is None:
                continue
            out[tenant] = TenantLimit(
                default.requests if q.requests_per_s is None else q.requests_per_s,
                default.items if q.items_per_s is None else q.items_per_s,
                default.burst_s if q.burst_s is None else q.burst_s,
            )
        return out

    def named_mismatch(self, request: web.Request, caller: Caller) -> web.Response | None:
        """The refusal of a request that names a tenant its credential does not belong to."""
        named = request.query.get("tenant") or request.headers.get(HEADER)
        if named is None or caller.tenant is None or named == caller.tenant:
            return None
        if not self.knows(named):
            return json_response(404, {"error": f"tenant: {named[:64]!r} is not a tenant of "
                                       "this installation; nothing was written"})  # fmt: skip
        return json_response(403, {"error": f"tenant: this credential belongs to tenant "
                                   f"{caller.tenant!r}, not {named!r}; nothing was "
                                   "written"})  # fmt: skip


def tenant_of(request: web.Request) -> str:
    """The tenant of an authenticated request (``default`` until a route decides)."""
    caller = request.get(CALLER)
    return caller.tenant if caller is not None and caller.tenant else DEFAULT_TENANT


def _arn_pattern(topic: str) -> re.Pattern[str]:
    # fnmatch's `*` crosses ':'; an ARN pattern's `*` stays within one part
    return re.compile(fnmatch.translate(topic).replace(".*", "[^:]*"))
