"""`tocsin topics fix` on a three-node cluster: a changelog left with one copy (as agents
configured for one broker made it) gets a reassignment plan, Kafka's own
kafka-reassign-partitions tool executes it, and then the copies are there and a second
`fix` sets the min.insync.replicas they allow."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streams.admin import check_topics, create_missing, create_topics
from streams.agents.changelog_specs import changelog_topics
from streams.broker.cluster import LocalCluster
from streams.catalog import Catalog
from streams.cli.main import cli
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.store.support import wait_until

# beside the rolling restart's cluster (tests/faults/cluster/rolling.py), never on it
CLUSTER_PORT = int(os.environ.get("TOCSIN_REASSIGN_CLUSTER_PORT", "19592"))
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


# a soak, as the rolling restart: three brokers starting at once take the 2-core machine
# the other tiers share
@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(600)
def test_the_plan_fix_writes_is_executed_by_kafkas_tool_and_the_copies_are_there(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(port=CLUSTER_PORT)
    cluster.reset()  # a cluster of its own, new each run
    try:
        cluster.start()
        _scenario(cluster, tmp_path)
    finally:
        cluster.stop()  # three brokers left running would cost every later test


def _scenario(cluster: LocalCluster, tmp_path: Path) -> None:
    settings = KafkaSettings(bootstrap_servers=cluster.bootstrap, partitions=3,
                             replication_factor=3,
                             topic_prefix=f"f{uuid.uuid4().hex[:10]}.")  # fmt: skip
    admin, catalog = make_admin(settings), Catalog(settings)
    create_topics(admin, catalog)
    one_copy = settings.model_copy(update={"replication_factor": 1})
    [groups] = [t for t in changelog_topics(one_copy) if t.topic.endswith("-groups-changelog")]
    create_missing(admin, [groups])
    leaders = {p.id: p.leader for p in admin.list_topics(timeout=30).topics[groups.topic]
               .partitions.values()}  # fmt: skip

    plan = tmp_path / "reassignment.json"
    result = _fix(settings, plan)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert f"PLAN {groups.topic}: 3 partitions to 3 replicas" in lines, lines
    assert any(x.startswith(f"LEFT {groups.topic}: min.insync.replicas=1, expected 2: not set")
               for x in lines), lines  # fmt: skip
    moves = json.loads(plan.read_text())["partitions"]
    assert sorted(m["partition"] for m in moves) == [0, 1, 2]
    for m in moves:
        assert m["topic"] == groups.topic and len(set(m["replicas"])) == 3, m
        assert m["replicas"][0] == leaders[m["partition"]], "the leader stays first"

    node = cluster.nodes[0]
    started = _tool(node.tool(REASSIGN, "--bootstrap-server", cluster.bootstrap,
                              "--reassignment-json-file", str(plan), "--execute"))  # fmt: skip
    assert "Successfully started partition reassignment" in started, started

    def completed() -> bool:
        out = _tool(node.tool(REASSIGN, "--bootstrap-server", cluster.bootstrap,
                              "--reassignment-json-file", str(plan), "--verify"))  # fmt: skip
        assert "rather than" not in out, out  # the tool's word for a reassignment that failed
        return out.count("is completed.") == len(moves)

    wait_until("the reassignment completed (--verify)", completed, 120)
    wait_until("every partition with three copies in the metadata",
               lambda: not [d for d in check_topics(admin, catalog)
                            if d.problem.startswith("replication factor")], 60)  # fmt: skip

    again = _fix(settings, plan)
    assert again.exit_code == 0, again.output
    assert f"set {groups.topic}: min.insync.replicas=1 -> 2" in again.stdout.splitlines()
    assert check_topics(admin, catalog, changelog_topics(settings)) == []


def _fix(settings: KafkaSettings, plan: Path) -> Result:
    return CliRunner().invoke(cli, ["topics", "fix", "--plan", str(plan)],
                              env=settings.environment())  # fmt: skip


def _tool(command: list[str]) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, (
        f"{command[-1]}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    )
    return proc.stdout
