"""Roll a three-node cluster under load, kill one node, then two (the quorum lost): the
pipeline serves through the first two and waits out the third, and pages what an
uninterrupted run pages (see rolling.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import KafkaSettings
from tests.faults.cluster.rolling import run_rolling


# a soak (`make faults`): three brokers starting at once take the 2-core machine that
# `make test` shares between three test processes for a quarter of a minute
@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_a_rolling_restart_a_dead_node_and_a_lost_quorum_change_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    measured = run_rolling(kafka_settings, tmp_path)
    print(measured)
