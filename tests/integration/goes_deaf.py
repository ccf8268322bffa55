"""A real consumer that goes deaf on demand, as librdkafka consumers were seen doing after
a broker restart: it fails every request and fetches nothing, while the broker answers
everyone else. Only the first one made goes deaf; its successors work."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka import make_consumer


class GoesDeaf:
    """Deaf once `deaf` is set (the first one made only)."""

    made: list[GoesDeaf] = []
    deaf = threading.Event()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._real = make_consumer(*args, **kwargs)
        self.stuck = not GoesDeaf.made  # only the first one goes deaf
        self.assigned: list[TopicPartition] = []
        self.deaf_fetches = 0  # fetches begun deaf: none of them returns a record
        GoesDeaf.made.append(self)

    def _deaf(self) -> bool:
        return self.stuck and GoesDeaf.deaf.is_set()

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self._real.get_watermark_offsets(tp, timeout=timeout)

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = tps
        self._real.assign(tps)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if self._deaf():
            self.deaf_fetches += 1
            return []
        return self._real.consume(num_messages=num_messages, timeout=timeout)

    def list_topics(self, topic: str, timeout: float) -> Any:
        if self._deaf():
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
        return self._real.list_topics(topic, timeout=timeout)

    def close(self) -> None:
        self._real.close()

    @staticmethod
    def reset() -> None:
        GoesDeaf.made = []
        GoesDeaf.deaf.clear()
