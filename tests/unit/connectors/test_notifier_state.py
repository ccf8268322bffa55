"""The notifier's memory: delivered marks and Slack message ids survive a restart; marks
older than the outbox's retention are tombstoned so the set stays bounded."""

from __future__ import annotations

from typing import Any

import pytest

import streams.notifier.state as state_module
from streams.notifier.state import NotifierState
from streams.settings import KafkaSettings

NOW = 1_800_000_000.0
DAY = 86_400


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.records.append((key, value))


def test_restart_restores_marks_and_messages_and_prunes_old_marks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = Recorder()
    before = NotifierState(first, "t", clock=lambda: NOW - 40 * DAY)  # type: ignore[arg-type]
    before.mark_done("old")
    before.write_marks()
    recent = NotifierState(first, "t", clock=lambda: NOW - DAY)  # type: ignore[arg-type]
    recent.mark_done("recent")
    assert first.records == [(b"done:old", str(int(NOW - 40 * DAY)).encode())], (
        "a mark waits for write_marks, which follows its receipt's acknowledgement"
    )
    recent.write_marks()
    recent.put("inc-1", "#ops", "C1/17.1")
    legacy = [(b"done:legacy", b"1")]

    def read(settings: Any, topic: str) -> list[tuple[bytes, bytes]]:
        return [*legacy, *((k, v) for k, v in first.records if v is not None)]

    monkeypatch.setattr(state_module, "read_topic_keyed", read)
    out = Recorder()
    after = NotifierState(out, "t", clock=lambda: NOW)  # type: ignore[arg-type]
    after.load(KafkaSettings())
    assert after.done == {"recent", "legacy"}, "older than the 30-day outbox: forgotten"
    assert after.get("inc-1", "#ops") == "C1/17.1"
    assert out.records == [(b"done:old", None)], "a tombstone compacts the old mark away"
