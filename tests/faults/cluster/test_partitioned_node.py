"""Cut a node of a three-node cluster (the busiest, the processor's transaction
coordinator, the processor's group coordinator, the agents' group coordinator) off
from the other two under load, the clients still reaching it: the pipeline pages what
arrives meanwhile while the node is still cut off, and what an uninterrupted run pages
after the partition heals (see partition.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import KafkaSettings
from tests.faults.cluster.partition import can_partition, run_partition
from tests.faults.cluster.under_load import (
    agents_coordinator,
    processor_coordinator,
    processor_group_coordinator,
)


# a soak (`make faults`), as the rolling restart: a cluster of three brokers of its own
@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_a_node_cut_off_from_the_cluster_delays_no_page_until_it_heals(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    if why := can_partition():
        pytest.skip(why)
    measured = run_partition(kafka_settings, tmp_path)
    print(measured)


@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_the_processors_transaction_coordinator_cut_off_delays_no_page(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The node cut off coordinates the processor's transactions: it still answers for
    them, and can no longer finish any."""
    if why := can_partition():
        pytest.skip(why)
    measured = run_partition(kafka_settings, tmp_path, processor_coordinator)
    print(measured)


@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_the_processors_group_coordinator_cut_off_delays_no_page(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The node cut off coordinates the processor's consumer group: a rebalance there
    cannot finish, and the processor's consumer keeps rejoining it."""
    if why := can_partition():
        pytest.skip(why)
    measured = run_partition(kafka_settings, tmp_path, processor_group_coordinator)
    print(measured)


@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_the_agents_group_coordinator_cut_off_delays_no_page(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The node cut off coordinates the agents' consumer group: it still answers their
    heartbeats, and can no longer store a committed offset."""
    if why := can_partition():
        pytest.skip(why)
    measured = run_partition(kafka_settings, tmp_path, agents_coordinator)
    print(measured)
