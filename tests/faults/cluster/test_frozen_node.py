"""Freeze the busiest node of a three-node cluster under load: the pipeline pages what
arrives meanwhile while the node is still frozen, and what an uninterrupted run pages
after it wakes (see frozen.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import KafkaSettings
from tests.faults.cluster.frozen import run_frozen


# a soak (`make faults`), as the rolling restart: a cluster of three brokers of its own
@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_a_frozen_node_delays_no_page_until_it_wakes(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    measured = run_frozen(kafka_settings, tmp_path)
    print(measured)
