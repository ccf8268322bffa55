"""kill -9 a processor again and again while input arrives, at random moments from its
start (start-up, restore, replay, mid-batch), then compare every output topic record for
record with an uninterrupted run: nothing lost, nothing duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.faults import processor_kills


@pytest.mark.faults
def test_kill9_during_startup_restore_and_replay_loses_and_duplicates_nothing(
    broker: str, tmp_path: Path
) -> None:
    row = processor_kills.run(broker, trials=6, tmp=tmp_path)
    assert row.exits == 0, row.notes
    assert row.lost == 0 and row.duplicated == 0, row.notes
    assert row.ok, row.notes
