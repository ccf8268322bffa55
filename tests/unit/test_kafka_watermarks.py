"""A client that does not fetch a partition learns of its new leader only when asked for
the topic's metadata: `watermarks` asks, and is answered."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka import watermarks


class StaleLeader:
    """Answers "Unknown partition" (what librdkafka says with a leader that moved away)
    until the topic's metadata has been asked for."""

    def __init__(self, code: int = KafkaError._UNKNOWN_PARTITION) -> None:
        self.code = code
        self.refreshed: list[str] = []
        self.asked = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        if not self.refreshed:
            raise KafkaException(KafkaError(self.code))
        return 3, 42

    def list_topics(self, topic: str, timeout: float) -> object:
        self.refreshed.append(topic)
        return object()


@pytest.mark.parametrize("code", [KafkaError._UNKNOWN_PARTITION,
                                  KafkaError.NOT_LEADER_FOR_PARTITION])  # fmt: skip
def test_a_stale_leader_is_looked_up_again(code: int) -> None:
    client = StaleLeader(code)
    assert watermarks(client, TopicPartition("t.alerts", 2), 5) == (3, 42)  # type: ignore[arg-type]
    assert client.refreshed == ["t.alerts"]
    assert client.asked == 2


def test_other_errors_are_not_retried() -> None:
    client = StaleLeader(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        watermarks(client, TopicPartition("t.alerts", 2), 5)  # type: ignore[arg-type]
    assert client.asked == 1
