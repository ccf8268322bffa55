"""Engine checkpoints in the compacted `processor-state` topic.

One checkpoint of one input partition is a manifest record plus chunks (a big
engine does not fit one Kafka message), all written inside the worker's
transaction, so a checkpoint and the input offsets it covers commit together.
Restoring = latest manifest + its chunks, then replaying the input from the
checkpoint's offset up to the group's committed offset with outputs
suppressed: the engine is deterministic, so it ends in the state it had.

Checkpoints are keyed by consumer group as well as input partition: two processor
deployments over the same topics (a canary with a new rule pack, say) have offsets of
their own, and one restoring the other's state would count records twice or never.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from streams.kafka import watermarks

CHUNK = 512 * 1024


@dataclass(frozen=True, slots=True)
class Checkpoint:
    offset: int  # next input offset to process after this state
    state: bytes


def manifest_key(group: str, topic: str, partition: int) -> bytes:
    return f"{group}/{topic}:{partition}".encode()


def encode_checkpoint(
    group: str, topic: str, partition: int, offset: int, state: bytes
) -> list[tuple[bytes, bytes]]:
    """(key, value) records: the chunks first, the manifest last."""
    packed = zlib.compress(state, 1)
    digest = hashlib.sha256(packed).hexdigest()[:16]
    chunks = [packed[i : i + CHUNK] for i in range(0, len(packed), CHUNK)] or [b""]
    base = manifest_key(group, topic, partition)
    out = [(base + f":{i}".encode(), digest.encode() + b"|" + c) for i, c in enumerate(chunks)]
    manifest = orjson.dumps({"offset": offset, "chunks": len(chunks), "digest": digest})
    out.append((base, manifest))
    return out


def read_checkpoint(
    consumer: Consumer,
    state_topic: str,
    state_partition: int,
    group: str,
    topic: str,
    partition: int,
    timeout: float = 30.0,
) -> Checkpoint | None:
    """Read the state partition to its end and rebuild the latest checkpoint, if any."""
    tp = TopicPartition(state_topic, state_partition)
    low, high = watermarks(consumer, tp, timeout)
    if high <= low:
        return None
    base = manifest_key(group, topic, partition)
    prefix = base + b":"
    latest: dict[bytes, bytes] = {}
    consumer.assign([TopicPartition(state_topic, state_partition, low)])
    try:
        position = low
        moved_at = time.monotonic()
        while position < high:
            if time.monotonic() - moved_at > timeout:
                raise TimeoutError(f"reading {state_topic}[{state_partition}] stalled at "
                                   f"offset {position} of {high} for {timeout:g}s")  # fmt: skip
            for msg in consumer.consume(1000, timeout=0.2):
                moved_at = time.monotonic()
                if msg.error():
                    continue
                position = max(position, (msg.offset() or 0) + 1)
                key = msg.key() or b""
                if key == base or key.startswith(prefix):
                    latest[key] = msg.value() or b""
            if position < high:
                # transaction markers occupy offsets too: trust the consumer position
                pos = consumer.position([TopicPartition(state_topic, state_partition)])[0].offset
                if pos > position:
                    moved_at = time.monotonic()
                position = max(position, pos)
    finally:
        consumer.unassign()
    manifest_raw = latest.get(base)
    if manifest_raw is None:
        return None
    manifest: dict[str, Any] = orjson.loads(manifest_raw)
    digest = manifest["digest"].encode()
    parts: list[bytes] = []
    for i in range(int(manifest["chunks"])):
        chunk = latest.get(base + f":{i}".encode(), b"")
        tag, _, body = chunk.partition(b"|")
        if tag != digest:
            raise RuntimeError(f"checkpoint {base!r} chunk {i} belongs to another checkpoint")
        parts.append(body)
    return Checkpoint(int(manifest["offset"]), zlib.decompress(b"".join(parts)))
