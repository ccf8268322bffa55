"""kill -9 the gateway while clients send and retry: every acknowledged sample is in
Kafka, and a sample stored twice (a retry of a request the killed gateway had written)
carries the same event id, so a consumer can drop the copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.faults import gateway_kills


@pytest.mark.faults
def test_kill9_under_retrying_clients_loses_nothing_acknowledged(
    broker: str, tmp_path: Path
) -> None:
    row = gateway_kills.run(broker, trials=3, tmp=tmp_path, max_delay=4.0)
    assert row.exits == 0, row.notes
    assert row.lost == 0, row.notes
    assert row.duplicated == 0, f"copies a consumer cannot recognise: {row.notes}"
    assert row.ok, row.notes
