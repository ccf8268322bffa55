"""docker-compose.yml is valid against the Compose Specification and runs every worker
from the one image with commands, files and settings that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.unit.deploy.conftest import ROOT, assert_valid_invocation, option_values

VENDOR = Path(__file__).parent / "vendor"
WORKERS = ("gateway", "processor", "agents", "notifier", "expiry", "projector", "api")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec_schema() -> dict[str, Any]:
    # the Compose Specification's JSON Schema, vendored (see vendor/README.md)
    return json.loads((VENDOR / "compose-spec.json").read_text())  # type: ignore[no-any-return]


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], spec_schema: dict[str, Any]
) -> None:
    jsonschema.validate(compose, spec_schema)


def test_a_misspelt_service_key_is_caught_by_the_specification(
    compose: dict[str, Any], spec_schema: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["processor"]["comand"] = ["run", "processor"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, spec_schema)


def test_kafka_is_a_single_kraft_node_without_topic_auto_creation(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "healthcheck" in kafka


def test_workers_start_after_the_topics_job_from_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    topics = services["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in WORKERS:
        service = services[name]
        assert service["image"] == topics["image"] == "tocsin:latest", name
        assert service["build"] == ".", name
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["command"][:2] == ["run", name]
        assert_valid_invocation(service["command"])
        assert service["read_only"] is True and service["user"] == "10001:10001"
        assert "healthcheck" in service, name


def test_files_the_workers_are_given_ship_in_the_image(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in WORKERS:
        for flag, values in option_values(compose["services"][name]["command"]).items():
            for value in values:
                if value.startswith("/app/"):
                    rel = value.removeprefix("/app/")
                    assert (ROOT / rel).exists(), f"{name} {flag} {value}"
                    assert f"COPY {rel.split('/')[0]} " in dockerfile, f"{rel} not in the image"
    rules = compose["services"]["processor"]["command"]
    assert option_values(rules)["--rules"] == ["/app/rules/default.yaml"]
    assert option_values(compose["services"]["agents"]["command"])["--config"] == [
        "/app/examples/config"
    ]


def test_settings_are_tocsin_settings_and_secrets_come_from_the_environment(
    compose: dict[str, Any],
) -> None:
    from streams.settings import KafkaSettings

    known = {f"TOCSIN_{n.upper()}" for n in KafkaSettings.model_fields}
    known |= {"TOCSIN_LOG_FORMAT", "TOCSIN_LOG_LEVEL", "TOCSIN_INSTANCE_ID"}
    known |= {"TOCSIN_GATEWAY_INSECURE_NO_AUTH"}  # `tocsin run gateway --insecure-no-auth`
    known |= {"TOCSIN_STORE_DSN"}
    passthrough = re.compile(r"^\$\{[A-Z_]+:-\}$")
    for name in ("topics", *WORKERS):
        env = compose["services"][name]["environment"]
        assert env["TOCSIN_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        for key, value in env.items():
            secretish = any(w in key for w in ("TOKEN", "SECRET", "KEY", "PASSWORD"))
            if secretish:
                # never a literal: the operator's shell or .env supplies it
                assert passthrough.match(str(value)), f"{name}: {key}={value!r}"
            elif key.startswith("TOCSIN_") and not passthrough.match(str(value)):
                assert key in known, f"{name}: {key} is no tocsin setting"
    notifier = compose["services"]["notifier"]["environment"]
    assert {"SLACK_BOT_TOKEN", "PAGERDUTY_ROUTING_KEYS"} <= set(notifier)
    gateway = compose["services"]["gateway"]["environment"]
    assert {"SLACK_SIGNING_SECRET", "TOCSIN_GATEWAY_TOKENS"} <= set(gateway)


def test_the_observability_profile_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        service = compose["services"][name]
        assert service["profiles"] == ["observability"]
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            assert (ROOT / source).exists(), f"{name}: {source}"


def test_an_open_gateway_is_reachable_from_the_host_s_loopback_only(
    compose: dict[str, Any],
) -> None:
    from streams.cli.run_gateway import gateway

    gw = compose["services"]["gateway"]
    env = gw["environment"]
    flag = next(p for p in gateway.params if p.name == "insecure_no_auth")
    assert flag.envvar == "TOCSIN_GATEWAY_INSECURE_NO_AUTH"
    if "--insecure-no-auth" in gw["command"] or "INSECURE_NO_AUTH:-true" in str(
        env.get("TOCSIN_GATEWAY_INSECURE_NO_AUTH")
    ):
        assert all(str(p).startswith("127.0.0.1:") for p in gw["ports"]), gw["ports"]
    # the tokens still pass through: set, they close every route
    assert env["TOCSIN_GATEWAY_TOKENS"] == "${TOCSIN_GATEWAY_TOKENS:-}"


def test_the_projector_and_the_api_use_the_postgres_service_without_a_password_in_the_file(
    compose: dict[str, Any],
) -> None:
    from streams.store.db import StoreSettings

    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and "ports" not in postgres
    assert "healthcheck" in postgres
    for name in ("projector", "api"):
        env = services[name]["environment"]
        dsn = StoreSettings(dsn=env["TOCSIN_STORE_DSN"]).describe()
        assert dsn == env["TOCSIN_STORE_DSN"], "no password in the DSN"
        assert dsn.startswith("postgresql://tocsin@postgres:5432/")
        assert env["PGPASSWORD"] == "${POSTGRES_PASSWORD:-}"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["projector"]["condition"] == "service_healthy"
    assert all(str(p).startswith("127.0.0.1:") for p in services["api"]["ports"])
