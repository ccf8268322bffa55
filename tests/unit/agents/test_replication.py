"""The agents' changelogs hold every incident group's state: faust creates them, and
must give them the copies the settings ask for, not its own default of one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from streams.agents.app import build_app
from streams.settings import KafkaSettings


@pytest.mark.parametrize(("replicas", "need"), [(1, "1"), (3, "2")])
def test_the_changelogs_get_the_configured_copies(tmp_path: Path, replicas: int,
                                                  need: str) -> None:  # fmt: skip
    # unreachable on purpose: nothing here talks to Kafka, the app is only built
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", replication_factor=replicas)
    app = build_app(settings, load_config([EXAMPLE_CONFIG]), datadir=str(tmp_path))
    assert app.conf.topic_replication_factor == replicas
    assert {"groups", "heartbeats"} <= set(app.tables)
    for name in ("groups", "heartbeats"):
        changelog = app.tables[name].changelog_topic
        assert changelog.replicas in (None, replicas)  # None: the app's own, above
        assert changelog.config == {"min.insync.replicas": need}, name
