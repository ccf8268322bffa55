"""Tells faust's consumer where its partitions' leaders are now.

aiokafka's consumer learns of a new leader only from an error answer or from its
periodic metadata refresh, minutes apart by faust's default. A node that hangs
(frozen, cut off) gives no answer at all: the consumer keeps fetching its partitions
from it, each request waiting out the request timeout, and the records wait for minutes
while the rest of the cluster serves them. A refresh it starts itself asks the nodes it
knows in random order and may ask the hung one first. So when the cluster names
another leader for a partition than the consumer does, the metadata is asked of that
leader, which answers, and the consumer's view is replaced with its answer; the fetcher
sends the partition's next fetch there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def point_at_leaders(app: Any, leaders: Mapping[tuple[str, int], int]) -> bool:
    """Whether faust's consumer named another leader than `leaders` (the cluster's, by
    topic and partition) for any of them, and now has its metadata from such a leader.
    Runs on the consumer's own thread and loop."""
    if not leaders:
        return False
    thread = app.consumer._thread  # faust runs aiokafka on a thread of its own

    async def on_thread() -> bool:
        from aiokafka.protocol.metadata import MetadataRequest
        from aiokafka.structs import TopicPartition

        client = thread._ensure_consumer()._client
        moved = {key: (known, leader) for key, leader in leaders.items()
                 if (known := client.cluster.leader_for_partition(TopicPartition(*key)))
                 != leader}  # fmt: skip
        if not moved:
            return False
        # every topic it follows: the answer replaces its whole view
        topics = sorted(client.cluster.topics() | {topic for topic, _ in leaders})
        _, leader = next(iter(moved.values()))
        answer = await client.send(leader, MetadataRequest(topics))
        client.cluster.update_metadata(answer)
        log.warning("consumer_leaders_moved", asked=leader,
                    partitions={f"{t}[{p}]": f"{was} -> {now}"
                                for (t, p), (was, now) in sorted(moved.items())})  # fmt: skip
        return True

    changed: bool = await thread.call_thread(on_thread)
    return changed
