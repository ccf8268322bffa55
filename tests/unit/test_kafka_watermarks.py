"""A client that does not fetch a partition learns of its new leader only when asked for
the topic's metadata: `watermarks` asks, and is answered."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka import committed_offsets, watermarks


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


class DeadLeader(StaleLeader):
    """Times out (its leader died) until the topic has been looked up again."""

    def __init__(self) -> None:
        super().__init__(KafkaError._TIMED_OUT)
        self.timeouts: list[float] = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.timeouts.append(timeout)
        return super().get_watermark_offsets(tp, timeout)


def test_a_dead_leader_leaves_time_to_ask_the_new_one() -> None:
    client = DeadLeader()
    assert watermarks(client, TopicPartition("t.alerts", 0), 6) == (3, 42)  # type: ignore[arg-type]
    assert client.refreshed == ["t.alerts"]
    assert client.timeouts[0] <= 2  # not the whole budget on the dead broker


class MovingCoordinator:
    """Answers "Not coordinator" once, as a group's coordinator does while it moves."""

    def __init__(self) -> None:
        self.asked = 0

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked += 1
        if self.asked == 1:
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        return [TopicPartition(tp.topic, tp.partition, 7) for tp in tps]


def test_committed_offsets_are_asked_again_while_the_coordinator_moves() -> None:
    client = MovingCoordinator()
    [tp] = committed_offsets(client, [TopicPartition("t.alerts", 1)], 5)  # type: ignore[arg-type]
    assert (tp.partition, tp.offset, client.asked) == (1, 7, 2)
