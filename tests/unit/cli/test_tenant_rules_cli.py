"""The rule commands with an installation's tenants: `rules check` and `backtest` take
`--config DIR`, whose tenants' own rules join the shared pack for their samples only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from click.testing import CliRunner

from streams.cli.main import cli

EXAMPLE = "examples/config"  # acme's own rule: acme_checkout_latency, shop's p95 > 800 ms
T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


def test_rules_check_counts_the_tenants_own_rules() -> None:
    result = CliRunner().invoke(cli, ["rules", "check", "rules/", "--config", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert "1 of them tenants' own (acme)" in result.output


def test_a_backtest_applies_a_tenants_rule_to_that_tenants_samples_only(tmp_path: Path) -> None:
    lines = []
    for i in range(72):  # six minutes of slow checkouts, for acme and for the provider
        at = datetime.fromtimestamp(T0 + i * 5, UTC).isoformat()
        for tenant in ("acme", "default"):
            lines.append(orjson.dumps({"time": at, "source": "lb", "tenant": tenant,
                                       "labels": {"service": "shop", "host": "web-1"},
                                       "http_status": 200, "duration_ms": 900.0}))  # fmt: skip
    recorded = tmp_path / "recorded.ndjson"
    recorded.write_bytes(b"\n".join(lines) + b"\n")
    args = ["backtest", "--rules", "rules/", "--input", str(recorded)]
    with_tenants = CliRunner().invoke(cli, [*args, "--config", EXAMPLE])
    assert with_tenants.exit_code == 0, with_tenants.output
    fired = [line for line in with_tenants.output.splitlines() if " firing " in line]
    assert [line for line in fired if "acme_checkout_latency" in line] == [
        line for line in fired if "acme_checkout_latency tenant=acme host=web-1" in line
    ]
    assert any("acme_checkout_latency" in line for line in fired)
    # a shared rule: one alert per tenant
    assert any(line.endswith("api_latency_p95 service=shop value=907") for line in fired)
    assert any("api_latency_p95 tenant=acme service=shop" in line for line in fired)
    shared_only = CliRunner().invoke(cli, args)
    assert shared_only.exit_code == 0, shared_only.output
    assert "acme_checkout_latency" not in shared_only.output
