"""Which nodes the cluster counts, asked of the real broker: each node is asked at its
own address, so the answer is that node's own view."""

from __future__ import annotations

from streams.counted_nodes import asked, count, some_counted
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
