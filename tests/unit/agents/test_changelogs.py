"""The agents create their tables' changelogs before faust joins, and refuse partitions
handed to them without their changelog partitions (their state would not be restored)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest
from faust.types import TP
from structlog.testing import capture_logs

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from streams.agents import app as agents_app
from streams.agents.app import build_app
from streams.agents.changelogs import new_topics, unrestored
from streams.catalog import Catalog
from streams.settings import KafkaSettings

# unreachable on purpose: nothing here talks to Kafka, the app is only built
SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t.", partitions=3,
                         replication_factor=3)  # fmt: skip


def _app(tmp_path: Path) -> faust.App:
    return build_app(SETTINGS, load_config([EXAMPLE_CONFIG]), datadir=str(tmp_path))


def test_the_changelogs_are_created_as_faust_creates_them(tmp_path: Path) -> None:
    catalog = Catalog(SETTINGS)
    topics = {t.topic: t for t in new_topics(_app(tmp_path))}
    assert set(topics) == {"t.tocsin-agents-groups-changelog",
                           "t.tocsin-agents-heartbeats-changelog"}  # fmt: skip
    groups = topics["t.tocsin-agents-groups-changelog"]
    assert groups.num_partitions == catalog.get("incident-work").partitions
    heartbeats = topics["t.tocsin-agents-heartbeats-changelog"]
    assert heartbeats.num_partitions == catalog.get("heartbeats").partitions
    for topic in topics.values():
        assert topic.replication_factor == 3
        # compacted: the latest state per group, as faust's own create would make it
        assert topic.config == {"cleanup.policy": "compact", "min.insync.replicas": "2"}


def test_a_partition_without_its_changelog_partition_is_named() -> None:
    follows = {"groups-changelog": "incident-work", "hb-changelog": "heartbeats"}
    assigned = [TP("incident-work", 0), TP("incident-work", 2), TP("heartbeats", 1),
                TP("alerts", 0)]  # fmt: skip
    actives = [TP("groups-changelog", 0), TP("hb-changelog", 1)]
    assert unrestored(follows, assigned, actives) == ["incident-work[2]"]
    assert unrestored(follows, assigned, [*actives, TP("groups-changelog", 2)]) == []
    # a standby copy elsewhere is no restore here
    assert unrestored(follows, [TP("heartbeats", 0)], actives) == ["heartbeats[0]"]


class _Exited(Exception):
    pass


def _assign(app: faust.App, assigned: set[TP], actives: set[TP],
            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def _exit(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(agents_app.os, "_exit", _exit)
    monkeypatch.setattr(app.assignor, "assigned_actives", lambda: actives)
    asyncio.run(app.on_partitions_assigned.send(assigned))


def test_the_worker_ends_when_given_partitions_without_their_changelog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(tmp_path)
    work, groups = "t.incident-work", "t.tocsin-agents-groups-changelog"
    with capture_logs() as logs, pytest.raises(_Exited):
        _assign(app, {TP(work, 0), TP(work, 1)}, {TP(groups, 0)}, monkeypatch)
    [line] = [e for e in logs if e["event"] == "changelog_not_assigned"]
    assert line["partitions"] == ["t.incident-work[1]"] and line["log_level"] == "error"


def test_the_worker_carries_on_when_every_partition_comes_with_its_changelog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(tmp_path)
    work, groups = "t.incident-work", "t.tocsin-agents-groups-changelog"
    hb, hb_log = "t.heartbeats", "t.tocsin-agents-heartbeats-changelog"
    _assign(app, {TP(work, 0), TP(work, 1), TP(hb, 0), TP(groups, 0), TP(groups, 1)},
            {TP(groups, 0), TP(groups, 1), TP(hb_log, 0)}, monkeypatch)  # fmt: skip
