"""Which nodes the cluster counts, asked of the real broker: each node is asked at its
own address, so the answer is that node's own view."""

from __future__ import annotations

import threading
import time

from streams import counted_nodes
from streams.counted_nodes import asked, count, some_counted
from streams.runtime.bootstrap import guarded
from streams.settings import KafkaSettings


def test_the_broker_counts_itself_and_leaves_no_one_out(kafka_settings: KafkaSettings) -> None:
    found = count(kafka_settings)
    assert found is not None
    assert found.left_out == frozenset()
    assert list(found.counted.values()) == [kafka_settings.bootstrap_servers.split(",")[0]]
    assert some_counted(kafka_settings), "the gateway's second opinion: the cluster answers"


def test_an_address_where_nothing_listens_is_no_answer(kafka_settings: KafkaSettings) -> None:
    assert asked(kafka_settings, "127.0.0.1:9", timeout=2) is None
    nowhere = kafka_settings.model_copy(update={"bootstrap_servers": "127.0.0.1:9"})
    assert count(nowhere, timeout=2) is None
    assert not some_counted(nowhere)


def test_a_worker_hears_of_the_nodes_at_its_start(kafka_settings: KafkaSettings) -> None:
    # a later count asks these too, wherever a load-balanced bootstrap name leads
    settings = kafka_settings.model_copy(update={"stuck_restart_s": 0})
    key = settings.bootstrap_servers
    counted_nodes._heard_of.pop(key, None)
    with guarded(settings):
        deadline = time.monotonic() + 30
        while key not in counted_nodes._heard_of and time.monotonic() < deadline:
            threading.Event().wait(0.05)
    assert list(counted_nodes._heard_of.get(key, {}).values()) == [key.split(",")[0]]
