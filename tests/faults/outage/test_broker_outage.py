"""Stop the broker under load: every worker rides it out by itself, and the output is
what an uninterrupted run writes (see scenario.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import KafkaSettings
from tests.faults.outage.scenario import run_outage
from tests.faults.outage.side_workers import run_side_outage


@pytest.mark.faults
@pytest.mark.timeout(420)
def test_a_30s_broker_outage_changes_nothing(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    run_outage(kafka_settings, tmp_path, outage_s=30)


@pytest.mark.faults
@pytest.mark.timeout(300)
def test_expiry_and_projector_carry_on_after_a_broker_outage(tmp_path: Path) -> None:
    # in this file: one broker of the tests' own at a time
    run_side_outage(tmp_path)


@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_a_3min_broker_outage_changes_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    run_outage(kafka_settings, tmp_path, outage_s=180)
