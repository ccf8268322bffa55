"""What `tocsin topics fix` repairs, what it leaves and why, against an admin client that
answers like a cluster of three brokers (the real broker's cases are in
tests/integration/test_topics_fix.py)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from streams.admin import ConfigDrift, check_topics
from streams.agents.changelog_specs import changelog_topics
from streams.catalog import Catalog
from streams.cli import topics as topics_cli
from streams.cli.main import cli
from streams.settings import KafkaSettings
from streams.topics_repair import repair, settable

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t.", partitions=3,
                         replication_factor=3)  # fmt: skip
ENV = {"TOCSIN_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TOCSIN_TOPIC_PREFIX": "t.",
       "TOCSIN_PARTITIONS": "3", "TOCSIN_REPLICATION_FACTOR": "3"}  # fmt: skip


@pytest.mark.parametrize(("expected", "replicas", "ok"),
                         [("2", 1, False), ("2", 2, True), ("2", 3, True), ("1", 1, True),
                          ("3", 2, False)])  # fmt: skip
def test_min_insync_is_never_set_above_the_replicas_the_topic_has(
    expected: str, replicas: int, ok: bool
) -> None:
    drift = ConfigDrift("t.alerts", "min.insync.replicas", "1", expected)
    assert settable(drift, replicas) is ok


def test_other_configs_are_set_whatever_the_replicas() -> None:
    assert settable(ConfigDrift("t.alerts", "retention.ms", "1", "2"), 1)
    assert settable(ConfigDrift("t.x-changelog", "cleanup.policy", "delete", "compact"), 1)


@dataclass
class _Partition:
    id: int
    replicas: list[int]


@dataclass
class _Topic:
    partitions: dict[int, _Partition]


@dataclass
class _Entry:
    value: str | None


@dataclass
class _Metadata:
    topics: dict[str, _Topic]
    brokers: dict[int, object]


@cache
def _changelogs() -> list[Any]:
    return changelog_topics(SETTINGS)


def _done(value: Any) -> Future[Any]:
    fut: Future[Any] = Future()
    fut.set_result(value)
    return fut


@dataclass
class FakeAdmin:
    """Topics, their replicas and configs, on brokers 1-3; records the configs set."""

    replicas: dict[str, list[list[int]]]
    configs: dict[str, dict[str, str]]
    altered: list[tuple[str, str, str]] = field(default_factory=list)

    def list_topics(self, timeout: float) -> _Metadata:
        topics = {name: _Topic({p: _Partition(p, r) for p, r in enumerate(parts)})
                  for name, parts in self.replicas.items()}  # fmt: skip
        return _Metadata(topics, {1: object(), 2: object(), 3: object()})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        return {r: _done({k: _Entry(v) for k, v in self.configs[r.name].items()})
                for r in resources}  # fmt: skip

    def incremental_alter_configs(self, resources: list[Any],
                                  request_timeout: float) -> dict[Any, Any]:  # fmt: skip
        for r in resources:
            for entry in r.incremental_configs:
                self.configs[r.name][entry.name] = entry.value
                self.altered.append((r.name, entry.name, entry.value))
        return {r: _done(None) for r in resources}


def _cluster() -> FakeAdmin:
    """Every catalog topic and changelog as configured, but: `metrics` with a retention
    changed by hand, `alerts` with one copy (and the min.insync.replicas one copy allows),
    `incident-work` with one partition, the groups changelog with delete, not compact."""
    catalog = Catalog(SETTINGS)
    wanted = {t.name: (t.partitions, t.configs()) for t in catalog.resolved()}
    wanted |= {t.topic: (t.num_partitions, dict(t.config)) for t in _changelogs()}
    replicas = {name: [[1, 2, 3]] * n for name, (n, _) in wanted.items()}
    configs = {name: dict(c) for name, (_, c) in wanted.items()}
    configs["t.metrics"]["retention.ms"] = "1000"
    replicas["t.alerts"] = [[1], [2], [3]]
    configs["t.alerts"]["min.insync.replicas"] = "1"
    replicas["t.incident-work"] = [[1, 2, 3]]
    configs["t.tocsin-agents-groups-changelog"]["cleanup.policy"] = "delete"
    return FakeAdmin(replicas, configs)


def test_fix_sets_configs_plans_copies_and_leaves_partitions_and_min_insync(
    tmp_path: Path,
) -> None:
    admin = _cluster()
    done = repair(admin, Catalog(SETTINGS), _changelogs())  # type: ignore[arg-type]
    assert done.created == []
    assert sorted(admin.altered) == [
        ("t.metrics", "retention.ms", "172800000"),
        ("t.tocsin-agents-groups-changelog", "cleanup.policy", "compact"),
    ]
    left = {(x.topic, x.problem.split(":")[0]) for x in done.left}
    assert left == {("t.alerts", "min.insync.replicas=1, expected 2"),
                    ("t.incident-work", "partitions 1, expected 3")}  # fmt: skip
    [insync] = [x for x in done.left if x.topic == "t.alerts"]
    assert "has 1 replica " in insync.problem and "after the reassignment" in insync.problem
    assert [(m.topic, m.partition, m.replicas[0], len(m.replicas)) for m in done.plan] == [
        ("t.alerts", 0, 1, 3), ("t.alerts", 1, 2, 3), ("t.alerts", 2, 3, 3)]  # fmt: skip
    assert not done.done
    # what is left is what check still reports
    drifts = {str(d) for d in check_topics(admin, Catalog(SETTINGS),  # type: ignore[arg-type]
                                           _changelogs())}  # fmt: skip
    assert drifts == {"t.alerts: min.insync.replicas=1, expected 2",
                      "t.alerts: replication factor 1, expected 3",
                      "t.incident-work: partitions 1, expected 3"}  # fmt: skip


def test_the_changelogs_config_drift_is_reported_by_check(tmp_path: Path) -> None:
    admin = _cluster()
    drifts = {str(d) for d in check_topics(admin, Catalog(SETTINGS),  # type: ignore[arg-type]
                                           _changelogs())}  # fmt: skip
    assert "t.tocsin-agents-groups-changelog: cleanup.policy=delete, expected compact" in drifts
    # without the changelogs (check_topics' earlier callers) only the catalog is compared
    without = {str(d) for d in check_topics(admin, Catalog(SETTINGS))}  # type: ignore[arg-type]
    assert not any("cleanup.policy" in d for d in without)


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    admin = _cluster()
    done = repair(admin, Catalog(SETTINGS), _changelogs(),  # type: ignore[arg-type]
                  dry_run=True)  # fmt: skip
    assert admin.altered == []
    assert {(c.topic, c.key) for c in done.set} == {
        ("t.metrics", "retention.ms"),
        ("t.tocsin-agents-groups-changelog", "cleanup.policy"),
    }
    assert len(done.plan) == 3


def _fix_on_a_cluster(monkeypatch: pytest.MonkeyPatch, plan: Path,
                      *args: str) -> tuple[FakeAdmin, Result]:  # fmt: skip
    """`topics fix` against a fake three-broker cluster; the cluster, and the result."""
    admin = _cluster()
    monkeypatch.setattr(topics_cli, "make_admin", lambda settings: admin)
    return admin, CliRunner().invoke(cli, ["topics", "fix", *args, "--plan", str(plan)], env=ENV)


def test_the_command_prints_each_step_writes_the_plan_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.json"
    _, result = _fix_on_a_cluster(monkeypatch, plan)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "set t.metrics: retention.ms=1000 -> 172800000" in lines
    assert any(x.startswith("LEFT t.incident-work: partitions 1, expected 3: not changed")
               for x in lines)  # fmt: skip
    assert "PLAN t.alerts: 3 partitions to 3 replicas" in lines
    base = ("kafka-reassign-partitions.sh --bootstrap-server 127.0.0.1:1 "
            f"--reassignment-json-file {plan}")  # fmt: skip
    assert f"  {base} --execute" in lines and f"  {base} --verify" in lines
    written = json.loads(plan.read_text())
    assert written["version"] == 1
    assert [p["partition"] for p in written["partitions"]] == [0, 1, 2]
    # the leader first, then the least loaded brokers (all equal here: by id)
    assert written["partitions"][0] == {"topic": "t.alerts", "partition": 0, "replicas": [1, 2, 3]}


def test_the_command_in_a_dry_run_writes_no_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.json"
    admin, result = _fix_on_a_cluster(monkeypatch, plan, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "would set t.metrics: retention.ms=1000 -> 172800000" in result.stdout.splitlines()
    assert not plan.exists() and admin.altered == []
