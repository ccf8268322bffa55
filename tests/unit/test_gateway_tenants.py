"""Which tenant a gateway request belongs to (its credential's, and nothing else), and
each tenant's quota, without a server."""

from __future__ import annotations

import hashlib

import pytest

from schemas.config import Config
from schemas.errors import ConfigError
from streams.gateway.auth import Credentials
from streams.gateway.limits import TenantLimit, TenantQuotas, default_tenant_limit
from streams.gateway.tenancy import Tenancy


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tenant(tid: str, **intake: object) -> Config:
    return Config.model_validate({"tenant": tid, "intake": intake})


ACME = tenant("acme", tokens=[{"sha256": sha("acme-token")},
                              {"sha256": sha("acme-zabbix"), "only": "zabbix"}],
              pagerduty_keys=[sha("acme-routing-key")],
              sns_topics=["arn:aws:sns:*:111111111111:*"], slack_teams=["TACME01"],
              quota={"items_per_s": 10})  # fmt: skip
BETA = tenant("beta", tokens=[{"sha256": sha("beta-token")}], slack_channels=["CBETA01"],
              slack_teams=["TSHARED1"])  # fmt: skip


def creds() -> Credentials:
    t = Tenancy.of({"acme": ACME, "beta": BETA})
    return Credentials(frozenset({"provider-token"}), frozenset({"P" * 32}), tenants=t.secrets)


def test_each_token_speaks_for_its_own_tenant_and_the_environments_for_default() -> None:
    c = creds()
    acme = c.bearer_caller("Bearer acme-token", "ip")
    beta = c.bearer_caller("Bearer beta-token", "ip")
    provider = c.bearer_caller("Bearer provider-token", "ip")
    assert acme is not None and acme.tenant == "acme"
    assert beta is not None and beta.tenant == "beta"
    assert provider is not None and provider.tenant == "default"
    assert "acme-token" not in acme.id, "an id, never the secret"
    assert c.bearer_caller("Bearer nobodys-token", "ip") is None
    # a routing key of a tenant, or a tenant's token used as one, on /v2/enqueue
    key = c.pagerduty_caller(None, "acme-routing-key", "ip")
    assert key is not None and key.tenant == "acme"
    as_key = c.pagerduty_caller(None, "beta-token", "ip")
    assert as_key is not None and as_key.tenant == "beta"
    assert c.pagerduty_caller(None, "someone-elses-key", "ip") is None


def test_a_token_limited_to_an_intake_opens_that_route_only() -> None:
    c = creds()
    assert c.bearer_caller("Bearer acme-zabbix", "ip") is None
    on_zabbix = c.source("zabbix", frozenset(), "Bearer acme-zabbix")
    assert on_zabbix is not None and on_zabbix.tenant == "acme"
    assert c.source("checkmk", frozenset(), "Bearer acme-zabbix") is None


def test_a_credential_listed_by_two_tenants_is_a_config_error_naming_both() -> None:
    thief = tenant("beta", tokens=[{"sha256": sha("acme-token")}])
    with pytest.raises(ConfigError, match=r"tenants/beta: intake.tokens: .*tenant 'acme'"):
        Tenancy.of({"acme": ACME, "beta": thief})
    # a routing key of one tenant is a bearer token of another: still one secret, two owners
    key_as_token = tenant("beta", tokens=[{"sha256": sha("acme-routing-key")}])
    with pytest.raises(ConfigError, match="listed by tenant 'acme'"):
        Tenancy.of({"acme": ACME, "beta": key_as_token})
    with pytest.raises(ConfigError, match="slack_teams: 'TACME01'"):
        Tenancy.of({"acme": ACME, "beta": tenant("beta", slack_teams=["TACME01"])})
    with pytest.raises(ConfigError, match="environment, which belongs to tenant 'default'"):
        Tenancy.of({"acme": ACME}, env_secrets=frozenset({"acme-token"}))


def test_sns_topics_and_slack_workspaces_and_channels_map_to_tenants() -> None:
    t = Tenancy.of({"acme": ACME, "beta": BETA})
    assert t.sns_tenant("arn:aws:sns:eu-west-1:111111111111:alarms") == "acme"
    assert t.sns_tenant("arn:aws:sns:eu-west-1:222222222222:alarms") is None
    assert t.slack_tenant("TACME01", "CANY0001") == "acme"
    # a channel mapped to a tenant wins over its workspace's (a shared provider workspace)
    assert t.slack_tenant("TSHARED1", "CBETA01") == "beta"
    assert t.slack_tenant("TUNKNOWN", None) is None
    assert t.knows("acme") and t.knows("default") and not t.knows("gamma")


def test_per_tenant_limits_come_from_the_config_over_the_gateway_defaults() -> None:
    t = Tenancy.of({"acme": ACME, "beta": BETA})
    limits = t.limits(TenantLimit(requests=50, items=1000, burst_s=2))
    assert limits == {"acme": TenantLimit(requests=50, items=10, burst_s=2)}


def test_one_tenant_over_its_request_rate_leaves_the_others_untouched() -> None:
    now = [0.0]
    q = TenantQuotas(TenantLimit(requests=10, burst_s=1), clock=lambda: now[0])
    assert [q.request("noisy") for _ in range(10)] == [0.0] * 10
    wait = q.request("noisy")
    assert 0 < wait <= 0.1 + 1e-9, "an 11th request within the second waits"
    assert q.request("quiet") == 0.0
    now[0] += 0.1
    assert q.request("noisy") == 0.0, "the bucket refills at the rate"


def test_items_may_go_into_debt_by_one_request_then_wait_until_it_is_paid() -> None:
    now = [0.0]
    q = TenantQuotas(TenantLimit(items=100, burst_s=1), {"big": TenantLimit(items=10_000)},
                     clock=lambda: now[0])  # fmt: skip
    assert q.items("acme", 250) == 0.0, "one request is never split"
    wait = q.items("acme", 1)
    assert wait == pytest.approx(1.5 + 0.01), "150 items of debt at 100/s, then one more"
    now[0] += 1.6
    assert q.items("acme", 1) == 0.0
    assert q.items("big", 5000) == 0.0, "a tenant's own quota overrides the default"
    assert TenantQuotas(TenantLimit()).items("any", 10**6) == 0.0, "0: no quota"


def test_several_tenants_get_the_shared_quota_by_default_and_one_tenant_none() -> None:
    assert default_tenant_limit(0) == TenantLimit() == default_tenant_limit(1)
    assert default_tenant_limit(1).requests == 0 and default_tenant_limit(1).items == 0
    shared = default_tenant_limit(2)
    assert (shared.requests, shared.items, shared.burst_s) == (300, 10_000, 2)
    # the gateway's flags win, field by field, and 0 turns a quota off
    assert default_tenant_limit(3, requests=0, items=0) == TenantLimit(0, 0, 2)
    assert default_tenant_limit(3, items=500, burst_s=5) == TenantLimit(300, 500, 5)
    assert default_tenant_limit(1, items=500) == TenantLimit(0, 500, 2)


def test_under_the_shared_default_a_tenant_is_held_to_it_unless_its_config_says_otherwise() -> None:
    now = [0.0]
    off = tenant("quiet", quota={"items_per_s": 0})
    t = Tenancy.of({"acme": ACME, "beta": BETA, "quiet": off})
    default = default_tenant_limit(4)
    q = TenantQuotas(default, t.limits(default), clock=lambda: now[0])
    # a Prometheus of 100,000 series every 15 s, for a minute: never refused
    for _ in range(60):
        assert q.items("beta", 6_700) == 0.0
        now[0] += 1.0
    assert q.items("beta", 25_000) == 0.0, "two seconds' burst, a request never split"
    assert q.items("beta", 1) > 0, "then the tenant waits"
    assert q.items("quiet", 10**6) == 0.0 and q.items("quiet", 1) == 0.0, "0 in its config"
    assert q.items("acme", 25) == 0.0 and q.items("acme", 1) > 0, "its own 10/s, burst 20"
