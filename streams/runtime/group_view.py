"""Whether the cluster's coordinator of a consumer group holds a static member.

A consumer whose group coordinator is a node cut off from the others keeps rejoining
there: that node still answers, and can store no assignment. Meanwhile the coordinator
the cluster elected expires the member, and the group goes on without it. A consumer
out of its group can tell the two cases apart only by asking the nodes the cluster
counts: one whose rebalance waits for another member (a processor restoring) is a
member there; a trapped one is not.
"""

from __future__ import annotations

from streams.counted_nodes import ASK_TIMEOUT_S, Count
from streams.kafka import quiet_admin
from streams.settings import KafkaSettings


def held_by_cluster(
    settings: KafkaSettings, found: Count, group_id: str, instance_id: str
) -> bool | None:
    """Does the coordinator the counted nodes lead to list `instance_id` among the
    members of `group_id`? None when it did not answer in time."""
    admin = quiet_admin(found.narrow(settings), "group-view")
    try:
        future = admin.describe_consumer_groups([group_id], request_timeout=ASK_TIMEOUT_S)
        described = future[group_id].result(timeout=ASK_TIMEOUT_S + 1)
    except Exception:  # the cluster busy electing, or away: no verdict
        return None
    return any(m.group_instance_id == instance_id for m in described.members)
