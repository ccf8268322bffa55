"""Start the fault plan only once every worker consumes: its consumer group is stable
with a member, and the agents answer /readyz.

A worker still joining its group when the faults begin would see them late, on a slower
machine or a secured cluster more than on a fast one, and the story would shift."""

from __future__ import annotations

import time

import httpx
from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient


def groups_waiting(admin: AdminClient, groups: list[str]) -> list[str]:
    """The groups that are not yet stable with at least one member."""
    waiting = []
    for group, future in admin.describe_consumer_groups(groups, request_timeout=10).items():
        try:
            desc = future.result()
        except KafkaException:
            waiting.append(group)
            continue
        if desc.state != ConsumerGroupState.STABLE or not desc.members:
            waiting.append(group)
    return waiting


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_workers(admin: AdminClient, groups: list[str], ready_urls: list[str],
                     timeout: float) -> list[str]:  # fmt: skip
    """Poll until every group is stable and every URL answers 200; what is still waiting
    when `timeout` s have passed (empty: all ready)."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = groups_waiting(admin, groups) + [u for u in ready_urls if not ready(u)]
        if not waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.5)  # polling interval of a bounded wait, not a synchronisation
