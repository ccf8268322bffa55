"""The last resort against a Kafka client that never recovers: the worker exits, and
its supervisor (Kubernetes, systemd, compose) starts it again.

Every Kafka wait of a worker is bounded and retried, and a client that keeps failing
is replaced (`renewal.py`). Still, a client stuck in a way neither notices (librdkafka
clients were seen failing every request for minutes after a broker restart while
every other client in the same process had recovered) leaves the worker waiting for
ever: not ready, live, and paging nobody. So once a worker has waited on Kafka while
a client created just for the question was answered with a leader and in-sync
replicas for every partition it needs, for `after_s` on end, its own clients are what
is wrong, and the process exits. A restart is as safe as a kill -9, which every
worker survives without losing or repeating anything; during an outage nothing
answers the question, so no one exits because the broker is away.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from streams.kafka import KafkaWait, quiet_admin, waits
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

EXIT_STUCK = 75  # EX_TEMPFAIL: try again
CHECK_EVERY_S = 10.0
# a wait shorter than this is an ordinary retry: no client is created to ask about it
ASK_AFTER_S = 30.0
# what the cluster keeps a worker's group offsets and transactions in
INTERNAL = ("__consumer_offsets", "__transaction_state")
SERVED = "every partition has a leader and the replicas in sync that a write needs"


def cluster_serves(settings: KafkaSettings, topics: Iterable[str], timeout: float = 10.0
                   ) -> tuple[bool, str]:  # fmt: skip
    """Does a new client get every partition of `topics` (and of the internal topics the
    cluster has) answered with a leader and enough replicas in sync to take a write?
    (False, why) otherwise."""
    try:
        metadata = quiet_admin(settings, "stuck").list_topics(timeout=timeout)
    except Exception as exc:  # the broker away, or not answering in time
        return False, f"no metadata: {exc}"
    return serves(metadata, list(topics), settings.min_insync)


def serves(metadata: Any, topics: list[str], min_insync: int) -> tuple[bool, str]:
    """The judgement of `cluster_serves` on a metadata answer."""
    wanted = topics + [t for t in INTERNAL if t in metadata.topics]
    for name in wanted:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            return False, f"topic {name} not served"
        for p in topic.partitions.values():
            if p.leader < 0 or p.error is not None:
                return False, f"{name}[{p.id}] has no leader"
            if len(p.isrs) < min(min_insync, len(p.replicas)):
                # writes rightly wait here (fewer in-sync replicas than a write needs): a
                # restart would not make them go through. A replica out of sync beyond
                # that (a node dead or hung for hours) leaves the cluster serving, and
                # the guard watching
                return False, f"{name}[{p.id}] has too few replicas in sync"
    return True, SERVED


class StuckGuard:
    """`step()` every few seconds on a thread of its own (`start()`); with `after_s` 0
    it never starts."""

    def __init__(self, settings: KafkaSettings, topics: Iterable[str], *,
                 after_s: float | None = None,
                 serves: Callable[[], tuple[bool, str]] | None = None,
                 watched: Callable[[], Iterable[KafkaWait]] = waits,
                 exit: Callable[[int], object] = os._exit,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        topics = list(topics)
        self.after_s = settings.stuck_restart_s if after_s is None else after_s
        # a short setting (a test's) asks and checks sooner
        self.ask_after_s = min(ASK_AFTER_S, self.after_s)
        self.every_s = min(CHECK_EVERY_S, max(self.after_s / 3, 0.5))
        self._serves = serves or (lambda: cluster_serves(settings, topics))
        self._watched, self._exit, self._clock = watched, exit, clock
        self._served_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        stalled = [w for w in self._watched() if w.stalled_s() >= self.ask_after_s]
        if not stalled:
            self._served_since = None
            return
        served, why = self._serves()
        now = self._clock()
        if not served:
            self._served_since = None  # an outage: waiting is right
            return
        if self._served_since is None:
            self._served_since = now
            return
        if now - self._served_since < self.after_s:
            return
        # the longest wait names what is stuck
        worst = max(stalled, key=lambda w: w.stalled_s())
        log.error("kafka_clients_stuck", worker=worst.worker, waiting_for=worst.what,
                  waited_s=round(worst.stalled_s()), cluster=why,
                  served_for_s=round(now - self._served_since), exit_code=EXIT_STUCK)  # fmt: skip
        sys.stderr.flush()
        sys.stdout.flush()
        self._exit(EXIT_STUCK)

    def start(self) -> StuckGuard:
        if self.after_s > 0:
            self._thread = threading.Thread(target=self._run, name="stuck-guard", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.step()
            except Exception as exc:  # the guard must never be what takes a worker down
                log.warning("stuck_guard_failed", error=str(exc)[:300])
