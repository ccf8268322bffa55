"""Where a producer's unacknowledged records wait, from librdkafka's statistics.

A wait for acknowledgements that outlasts its patience says which partitions hold
records, the leader (and its epoch) each is sent to, and the producer's idempotence
state: records waiting for a leader, for a producer id, or on a node that never answers
look the same from outside.
"""

from __future__ import annotations

from typing import Any

import orjson

STATS_EVERY_S = 10  # librdkafka's statistics this often: cheap, served by poll


class ProducerStats:
    """The latest statistics of one producer; `conf()` goes into its configuration."""

    def __init__(self) -> None:
        self.latest: str | None = None

    def conf(self) -> dict[str, Any]:
        return {"statistics.interval.ms": STATS_EVERY_S * 1000, "stats_cb": self._got}

    def _got(self, raw: str) -> None:
        self.latest = raw  # parsed only when a stall is reported

    def waiting(self) -> dict[str, Any]:
        """The partitions holding records not yet acknowledged, and the producer's id
        state, as of the latest statistics (empty before the first)."""
        if not self.latest:
            return {}
        stats = orjson.loads(self.latest)
        held = {}
        for name, topic in stats.get("topics", {}).items():
            for pid, p in topic.get("partitions", {}).items():
                # the queue counts stay 0 for records in the broker thread's queue; what
                # was produced less what was sent is not (sent again on a retry: clamped)
                unsent = max(0, p.get("msgs", 0) - p.get("txmsgs", 0))
                inflight = p.get("msgs_inflight", 0)
                if (unsent or inflight) and pid != "-1":  # -1: no partition chosen yet
                    held[f"{name}[{pid}]"] = {"unsent": unsent, "in_flight": inflight,
                                              "leader": p.get("leader"),
                                              "leader_epoch": p.get("leader_epoch")}  # fmt: skip
        eos = stats.get("eos", {})
        return {"idempotence": eos.get("idemp_state"), "held": held,
                "age_s": round(stats.get("age", 0) / 1e6, 1)}  # fmt: skip
