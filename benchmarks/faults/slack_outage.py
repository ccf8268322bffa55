"""Slack down for minutes (5xx, and calls that hang, some after Slack already acted)
while notifications keep coming: once Slack is back every page is delivered, and what
a person sees equals an uninterrupted run's, counted raw."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web

from benchmarks.faults.harness import Diff, Row, compare, copy_topic, exited_by_itself, kill9
from benchmarks.faults.notifier_kills import (
    _delivered,
    _start,
    notifications,
    settle,
    visible,
)
from benchmarks.scratch import scratch
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer


@dataclass
class SlackDown(FakeSlack):
    """The fake, failing every call until ``down_until`` (monotonic seconds)."""

    down_until: float = 0.0
    refused: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if time.monotonic() >= self.down_until:
            return await super()._handle(request)
        self.refused += 1
        pick = random.random()
        if pick < 0.1:
            # Slack acted and the answer never came back in time
            self.hangs.setdefault(request.match_info["method"], []).append(40.0)
            return await super()._handle(request)
        if pick < 0.2:
            await asyncio.sleep(40.0)
        status = random.choice((500, 502, 503, 504))
        return web.json_response({"ok": False, "error": "fatal_error"}, status=status)


def run(bootstrap: str, seconds: float, tmp: Path, incidents: int = 30) -> Row:
    rerun = f"python -m benchmarks.faults slack-outage --seconds {seconds:.0f}"
    records = notifications(incidents)
    ids = {orjson.loads(v)["notification_id"] for _, v in records}
    slack, quiet = SlackDown(), FakeSlack()
    exits = 0
    with scratch(bootstrap, "fks", partitions=3) as faulted, \
         scratch(bootstrap, "fkt", partitions=3) as reference, \
         serve(slack.app()) as url, serve(quiet.app()) as quiet_url:  # fmt: skip
        slack.down_until = time.monotonic() + seconds
        worker = _start(faulted, url, tmp / "notifier-outage.log")

        def feed() -> None:
            producer = make_producer(faulted)
            for key, value in records:
                producer.produce(faulted.topic_prefix + "notifications", key=key, value=value)
                producer.poll(0)
                time.sleep(seconds * 0.8 / len(records))
            assert producer.flush(60) == 0

        feeding = threading.Thread(target=feed, daemon=True)
        feeding.start()
        while time.monotonic() < slack.down_until:
            if exited_by_itself(worker):
                exits += 1
                worker = _start(faulted, url, tmp / "notifier-outage.log")
            time.sleep(1.0)
        feeding.join(120)
        back = time.monotonic()
        deadline = back + 600
        while _delivered(faulted) < ids and time.monotonic() < deadline:
            if exited_by_itself(worker):
                exits += 1
                worker = _start(faulted, url, tmp / "notifier-outage.log")
            time.sleep(1.0)
        caught_up = time.monotonic() - back
        kill9(worker)
        # the same worker code settles what is left (nothing, if all went well)
        ok_f, ex_f = settle(faulted, slack, url, tmp / "notifier-outage-final.log", ids, 120)
        copy_topic(faulted, reference, "notifications")
        ok_r, ex_r = settle(reference, quiet, quiet_url, tmp / "notifier-quiet.log", ids, 300)
    got, want = visible(slack), visible(quiet)
    diff = Diff()
    for kind in ("post", "reply", "update"):
        diff += compare(kind, [c for c in got if c[0] == kind], [c for c in want if c[0] == kind])
    notes = [f"calls refused or hung during the outage: {slack.refused}",
             f"every page delivered {caught_up:.0f}s after Slack came back",
             f"slack calls (uninterrupted): {dict(Counter(c[0] for c in want))}"]  # fmt: skip
    notes += diff.examples
    ok = diff.clean and ok_f and ok_r and not (exits + ex_f + ex_r) and bool(want)
    return Row(f"Slack outage {seconds / 60:.1f} min", 1, diff.lost, diff.duplicated, caught_up,
               exits + ex_f, ok, rerun, notes)  # fmt: skip
