"""`tocsin topics fix` against the real broker: a config changed by hand is set back, a
missing topic is created, a partition count is left as it is, and a dry run changes
nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streams.admin import check_topics, create_missing
from streams.agents.changelog_specs import changelog_topics
from streams.catalog import Catalog
from streams.cli.main import cli
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.store.support import wait_until


def _fix(settings: KafkaSettings, plan: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["topics", "fix", "--plan", str(plan), *args],
                              env=settings.environment())  # fmt: skip


def _create(admin: AdminClient, catalog: Catalog, *, but: str | None = None) -> None:
    """The catalog's topics, but one when told."""
    create_missing(admin, [NewTopic(t.name, num_partitions=t.partitions,
                                    replication_factor=t.replication_factor, config=t.configs())
                           for t in catalog.resolved() if t.name != but])  # fmt: skip


def _configs(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    [fut] = admin.describe_configs([resource], request_timeout=30).values()
    return {key: entry.value for key, entry in fut.result().items()}


def _set_by_hand(admin: AdminClient, topic: str, key: str, value: str) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])  # fmt: skip
    for fut in admin.incremental_alter_configs([resource], request_timeout=30).values():
        fut.result()
    # the broker describes it a moment after the controller took it: fix must see it
    wait_until(
        f"{topic} {key}={value} described",
        lambda: _configs(admin, topic).get(key) == value,
        timeout=30,
    )


def test_a_config_changed_by_hand_is_set_back_and_check_is_then_clean(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin, catalog = make_admin(kafka_settings), Catalog(kafka_settings)
    _create(admin, catalog)
    metrics = catalog.name("metrics")
    expected = catalog.get("metrics").configs()["retention.ms"]
    _set_by_hand(admin, metrics, "retention.ms", "1000")

    result = _fix(kafka_settings, tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"set {metrics}: retention.ms=1000 -> {expected}"]
    assert _configs(admin, metrics)["retention.ms"] == expected
    # fix returns once the broker describes what it set: check right after is clean
    assert check_topics(admin, catalog, changelog_topics(kafka_settings)) == []
    check = CliRunner().invoke(cli, ["topics", "check"], env=kafka_settings.environment())
    assert check.exit_code == 0, check.output
    assert not (tmp_path / "plan.json").exists(), "nothing to reassign, no plan"


def test_a_changelogs_config_is_set_as_the_agents_create_it(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin, catalog = make_admin(kafka_settings), Catalog(kafka_settings)
    _create(admin, catalog)
    [groups] = [
        t for t in changelog_topics(kafka_settings) if t.topic.endswith("-groups-changelog")
    ]
    # a changelog made by hand, deleting where the agents' compacts
    create_missing(admin, [NewTopic(groups.topic, num_partitions=groups.num_partitions,
                                    replication_factor=1,
                                    config={"cleanup.policy": "delete"})])  # fmt: skip
    drifts = [str(d) for d in check_topics(admin, catalog, changelog_topics(kafka_settings))]
    assert drifts == [f"{groups.topic}: cleanup.policy=delete, expected compact"]

    result = _fix(kafka_settings, tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    assert f"set {groups.topic}: cleanup.policy=delete -> compact" in result.stdout.splitlines()
    assert check_topics(admin, catalog, changelog_topics(kafka_settings)) == []


def test_a_missing_topic_is_created(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    admin, catalog = make_admin(kafka_settings), Catalog(kafka_settings)
    late = catalog.get("late")
    _create(admin, catalog, but=late.name)

    result = _fix(kafka_settings, tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"created {late.name}"]
    topics = admin.list_topics(timeout=30).topics
    assert len(topics[late.name].partitions) == late.partitions
    assert check_topics(admin, catalog, changelog_topics(kafka_settings)) == []


def test_a_topic_with_too_few_partitions_is_left_as_it_is(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin, catalog = make_admin(kafka_settings), Catalog(kafka_settings)
    alerts = catalog.get("alerts")
    _create(admin, catalog, but=alerts.name)
    create_missing(admin, [NewTopic(alerts.name, num_partitions=1, replication_factor=1,
                                    config=alerts.configs())])  # fmt: skip

    result = _fix(kafka_settings, tmp_path / "plan.json")
    assert result.exit_code == 1, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith(f"LEFT {alerts.name}: partitions 1, expected {alerts.partitions}: "
                           "not changed: keys are hashed to partitions"), line  # fmt: skip
    assert len(admin.list_topics(timeout=30).topics[alerts.name].partitions) == 1
    assert not (tmp_path / "plan.json").exists()


def test_a_dry_run_changes_nothing(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    admin, catalog = make_admin(kafka_settings), Catalog(kafka_settings)
    late, metrics = catalog.name("late"), catalog.name("metrics")
    expected = catalog.get("metrics").configs()["retention.ms"]
    _create(admin, catalog, but=late)
    _set_by_hand(admin, metrics, "retention.ms", "1000")
    plan = tmp_path / "plan.json"

    result = _fix(kafka_settings, plan, "--dry-run")
    # what fix would do leaves nothing: the dry run says so with its status
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"would create {late}",
        f"would set {metrics}: retention.ms=1000 -> {expected}",
    ]
    assert late not in admin.list_topics(timeout=30).topics
    assert _configs(admin, metrics)["retention.ms"] == "1000"
    assert not plan.exists()
    drifts = {str(d) for d in check_topics(admin, catalog, changelog_topics(kafka_settings))}
    assert drifts == {f"{late}: missing", f"{metrics}: retention.ms=1000, expected {expected}"}
