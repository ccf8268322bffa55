"""The end of a partition's committed records, once no transaction is open on it.

A read_committed consumer's high watermark is the last stable offset: it stops before
the first record of a transaction still open. A worker killed in the middle of one,
whose transactional id is not taken up again, leaves that transaction open until the
broker aborts it (`transaction.timeout.ms` later), and everything committed after it
waits behind. A reader that takes the stable offset for the end then misses records
that are already committed, with nothing to say so: it must wait until the stable
offset reaches the log end."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from streams.settings import KafkaSettings

# the broker's transaction timeout (30 s for the workers) plus its abort sweep (10 s)
SETTLE_S = 90.0


def settled_end(committed: Consumer, settings: KafkaSettings, topic: str, partition: int,
                timeout: float = SETTLE_S) -> tuple[int, int]:  # fmt: skip
    """(low, end) of the partition once its stable offset reached its log end; raises
    when a transaction stayed open for `timeout` seconds."""
    raw = Consumer(settings.client_config() | {"group.id": "settled-reader-unused",
                                                "isolation.level": "read_uncommitted"})  # fmt: skip
    tp = TopicPartition(topic, partition)
    try:
        deadline = time.monotonic() + timeout
        while True:
            low, stable = committed.get_watermark_offsets(tp, timeout=10, cached=False)
            _, end = raw.get_watermark_offsets(tp, timeout=10, cached=False)
            if stable >= end:
                return low, stable
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}]: a transaction open for {timeout:g} s "
                                   f"holds back records {stable}..{end - 1}")  # fmt: skip
            time.sleep(0.5)  # polling interval of a bounded wait
    finally:
        raw.close()
