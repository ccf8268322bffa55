"""SIGKILL the notifier again and again while notifications arrive, some kills right
after Slack acted on a call and before the notifier recorded anything, then compare
every user-visible Slack call at the fake (posts, thread replies, updates) raw with an
uninterrupted run over a copy of the same notifications."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.faults.harness import (
    Diff,
    Row,
    compare,
    copy_topic,
    exited_by_itself,
    kill9,
    read_values,
    start,
)
from benchmarks.scratch import scratch
from schemas import Notification, encode
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer
from streams.settings import KafkaSettings

VISIBLE = ("chat.postMessage", "chat.update")


def notifications(incidents: int) -> list[tuple[bytes, bytes]]:
    """Per incident: a channel message and a DM page, an acknowledgement update, a
    resolution to both, in the order the agents would write them."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[tuple[bytes, bytes]] = []
    steps = [("trigger", "triggered", "slack", "C-ops"), ("trigger", "triggered", "slack_dm",
             "U0ALICE"), ("update", "acknowledged", "slack", "C-ops"),
             ("resolve", "resolved", "slack", "C-ops"),
             ("resolve", "resolved", "slack_dm", "U0ALICE")]  # fmt: skip
    for i in range(incidents):
        inc = f"inc-{i:04d}"
        for n, (kind, status, channel, target) in enumerate(steps):
            note = Notification(
                notification_id=f"{inc}/{n}/{kind}/{channel}:{target}", incident_id=inc,
                kind=kind, channel=channel, target=target,
                title=f"Replication lag on db-{i}", status=status,
                severity="critical", priority="P1", opened_at=t0,
                at=t0 + timedelta(seconds=n),
            )  # fmt: skip
            out.append((inc.encode(), encode(note)))
    return out


def visible(slack: FakeSlack) -> list[tuple[str, str, str, str]]:
    """What a person sees: each post (top-level or in a thread) and each update, by
    channel and text; Slack's timestamps differ between runs and are left out."""
    out = []
    for method, args in list(slack.calls):
        if method in VISIBLE:
            kind = "reply" if args.get("thread_ts") else "update" if method == "chat.update" \
                else "post"  # fmt: skip
            out.append((kind, str(args.get("channel")), str(args.get("text")),
                        orjson.dumps(args.get("metadata")).decode()))  # fmt: skip
    return out


def _delivered(settings: KafkaSettings) -> set[str]:
    docs = [orjson.loads(v) for v in read_values(settings, settings.topic_prefix + "receipts")]
    return {str(d["notification_id"]) for d in docs if d.get("outcome") == "delivered"}


def _start(settings: KafkaSettings, url: str, log: Path) -> subprocess.Popen[bytes]:
    return start("notifier", ["--health-port", "0"], settings, log,
                 TOCSIN_SLACK_BASE_URL=f"{url}/api/")  # fmt: skip


def settle(settings: KafkaSettings, slack: FakeSlack, url: str, log: Path, ids: set[str],
           timeout: float) -> tuple[bool, int]:  # fmt: skip
    worker = _start(settings, url, log)
    exits = 0
    deadline = time.monotonic() + timeout
    seen, stable = -1, 0
    try:
        while time.monotonic() < deadline:
            if exited_by_itself(worker):
                exits += 1
                worker = _start(settings, url, log)
            time.sleep(1.0)
            calls = len(slack.calls)
            stable = stable + 1 if calls == seen and _delivered(settings) >= ids else 0
            seen = calls
            if stable >= 3:
                return True, exits
        return False, exits
    finally:
        kill9(worker)


def run(bootstrap: str, trials: int, tmp: Path, seed: int | None = None,
        max_delay: float = 8.0, incidents: int = 40) -> Row:  # fmt: skip
    rng = random.Random(seed)
    rerun = f"python -m benchmarks.faults notifier --trials {trials}"
    records = notifications(incidents)
    ids = {orjson.loads(v)["notification_id"] for _, v in records}
    phases: Counter[str] = Counter()
    exits = 0
    slack, quiet = FakeSlack(latency=0.02), FakeSlack(latency=0.02)
    victim: list[subprocess.Popen[bytes]] = []
    armed: list[int] = []  # kill after this many more user-visible calls

    def kill_after_call(method: str, args: dict[str, Any]) -> None:
        if method in VISIBLE and victim and armed:
            armed[0] -= 1
            if armed[0] <= 0:
                armed.clear()
                kill9(victim.pop())  # Slack acted; the notifier recorded nothing yet

    slack.on_call = kill_after_call
    with scratch(bootstrap, "fkn", partitions=3) as faulted, \
         scratch(bootstrap, "fko", partitions=3) as reference, \
         serve(slack.app()) as url, serve(quiet.app()) as quiet_url:  # fmt: skip

        def feed() -> None:
            producer = make_producer(faulted)
            pace = trials * max_delay * 0.6 / len(records)
            for key, value in records:
                producer.produce(faulted.topic_prefix + "notifications", key=key, value=value)
                producer.poll(0)
                time.sleep(pace)
            assert producer.flush(60) == 0

        feeding = threading.Thread(target=feed, daemon=True)
        feeding.start()
        for trial in range(trials):
            log = tmp / f"notifier-{trial}.log"
            worker = _start(faulted, url, log)
            if trial % 2:
                victim.append(worker)
                armed.append(rng.randint(1, 4))
                deadline = time.monotonic() + max_delay * 3
                while victim and time.monotonic() < deadline and worker.poll() is None:
                    time.sleep(0.05)
                phases["after a Slack call" if not victim else "timed out"] += 1
                victim.clear()
                armed.clear()
            else:
                time.sleep(rng.uniform(0.2, max_delay))
                text = log.read_text(errors="replace")
                phases["start-up" if "health_port" not in text else "running"] += 1
            if exited_by_itself(worker):
                exits += 1
            kill9(worker)
        feeding.join(300)
        ok_f, ex_f = settle(faulted, slack, url, tmp / "notifier-final.log", ids, 300)
        copy_topic(faulted, reference, "notifications")
        ok_r, ex_r = settle(reference, quiet, quiet_url, tmp / "notifier-ref.log", ids, 300)
    got, want = visible(slack), visible(quiet)
    diff = Diff()
    for kind in ("post", "reply", "update"):
        diff += compare(kind, [c for c in got if c[0] == kind], [c for c in want if c[0] == kind])
    by_kind = Counter(c[0] for c in want)
    notes = [f"kills: {dict(phases)}", f"slack calls (uninterrupted): {dict(by_kind)}"]
    if not (ok_f and ok_r):
        notes.append(f"settled: faulted={ok_f} reference={ok_r}")
    notes += diff.examples
    ok = diff.clean and ok_f and ok_r and not (exits + ex_f + ex_r) and bool(want)
    return Row("notifier SIGKILL", trials, diff.lost, diff.duplicated, None, exits + ex_f, ok,
               rerun, notes)  # fmt: skip
