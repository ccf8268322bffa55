"""Produce without dropping: a full librdkafka queue is waited out, not an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Producing(Protocol):
    """What the helpers need of a confluent_kafka.Producer (tests hand in fakes)."""

    def produce(self, topic: str, value: Any = ..., key: Any = ..., *args: Any,
                **kwargs: Any) -> None: ...  # fmt: skip
    def poll(self, timeout: float = ...) -> int: ...


def _idle() -> None:
    return None


def produce(producer: Producing, topic: str, value: bytes | None, key: bytes | None = None,
            partition: int = -1, beat: Callable[[], None] = _idle) -> None:  # fmt: skip
    """Enqueue one record; while the queue is full, serve deliveries until it has room
    (`beat` keeps the worker live meanwhile). Partition -1: the partitioner decides."""
    while True:
        try:
            producer.produce(topic, value, key, partition=partition)
            return
        except BufferError:
            producer.poll(0.5)
            beat()


async def produce_async(producer: Producing, topic: str, value: bytes | None,
                        key: bytes | None = None, partition: int = -1,
                        **kwargs: Any) -> None:  # fmt: skip
    """`produce` for an event loop: waits for room without blocking the loop."""
    import asyncio

    while True:
        try:
            producer.produce(topic, value, key, partition=partition, **kwargs)
            return
        except BufferError:
            if not producer.poll(0):
                await asyncio.sleep(0.005)
