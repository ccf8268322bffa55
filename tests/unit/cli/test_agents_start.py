"""Before faust starts, the agents worker waits for the broker and for its changelogs:
a failure there is waited out (live, not ready), never a crash."""

from __future__ import annotations

from threading import Event, Timer
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.agents import changelogs
from streams.cli import run_agents
from streams.health import Health
from streams.settings import KafkaSettings

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t.")


def test_a_failed_create_is_tried_again_until_the_changelogs_are_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    readiness: list[bool] = []
    health = Health()

    def declare(settings: KafkaSettings, app: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "create timed out"))
        readiness.append(health.ready()[0])
        return ["t.tocsin-agents-groups-changelog"]

    monkeypatch.setattr("streams.kafka.broker_reachable", lambda settings: True)
    monkeypatch.setattr(changelogs, "declare", declare)
    stop = Event()
    created = run_agents._ready_to_join(SETTINGS, object(), health, stop)
    assert created == ["t.tocsin-agents-groups-changelog"]
    assert len(calls) == 2
    assert readiness == [False], "not ready while the changelogs were not there"


def test_a_stop_during_the_wait_ends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.kafka.broker_reachable", lambda settings: False)
    stop = Event()
    Timer(0.3, stop.set).start()
    assert run_agents._ready_to_join(SETTINGS, object(), Health(), stop) is None
