"""An alert storm into one incident group beside normal traffic: probe alerts into
other groups must still be paged within the latency target, and the agents never exit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from benchmarks.faults.agents_kills import quiet_config, start_agents
from benchmarks.faults.harness import Row, exited_by_itself, kill9, wait_for
from benchmarks.scratch import scratch
from schemas import Alert, encode
from streams.kafka import make_producer
from streams.settings import KafkaSettings


def _storm(settings: KafkaSettings, n: int) -> None:
    producer = make_producer(settings)
    now = datetime.now(UTC)
    for i in range(n):
        # no alertname or service of their own beyond the storm's: one group
        a = Alert(fingerprint=f"storm-{i}", status="firing", rule="storm", severity="critical",
                  labels={"alertname": "storm", "service": "search", "host": "storm",
                          "instance": f"i-{i}"}, summary=f"storm member {i}",
                  starts_at=now)  # fmt: skip
        while True:
            try:
                producer.produce(settings.topic_prefix + "alerts", key=a.fingerprint.encode(),
                                 value=encode(a))  # fmt: skip
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0


def _follow(settings: KafkaSettings, seen: dict[str, list[float]], stop: threading.Event) -> None:
    c = Consumer(settings.client_config() | {"group.id": "storm-reader",
                 "isolation.level": "read_committed", "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe([settings.topic_prefix + "notifications"])
    while not stop.is_set():
        for m in c.consume(500, timeout=0.2):
            if m.error() or not m.value():
                continue
            d = orjson.loads(m.value() or b"{}")
            host = str((d.get("labels") or {}).get("host", ""))
            if host.startswith("probe-") and d.get("kind") == "trigger":
                seen.setdefault(host, []).append(time.time())
    c.close()


def run(bootstrap: str, alerts: int, tmp: Path, target: float = 5.0,
        probe_seconds: float = 90.0) -> Row:  # fmt: skip
    rerun = f"python -m benchmarks.faults storm --alerts {alerts}"
    config = quiet_config(tmp)
    sent: dict[str, float] = {}
    seen: dict[str, list[float]] = {}
    exits = 0
    with scratch(bootstrap, "fkm", partitions=3) as s:
        log = tmp / "agents-storm.log"
        worker = start_agents(s, config, log)
        stop = threading.Event()
        follower = threading.Thread(target=_follow, args=(s, seen, stop), daemon=True)
        follower.start()
        try:
            wait_for(lambda: "health_server" in log.read_text(errors="replace"), 120,
                     "the agents worker", log, worker)  # fmt: skip
            producer = make_producer(s)
            # a probe first, paged before the storm: the baseline
            storm = threading.Thread(target=_storm, args=(s, alerts), daemon=True)
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < probe_seconds:
                if i == 3:
                    storm.start()
                host = f"probe-{i:04d}"
                a = Alert(fingerprint=host, status="firing", rule="probe", severity="critical",
                          labels={"alertname": "probe", "service": "auth", "host": host},
                          summary="probe", starts_at=datetime.now(UTC))  # fmt: skip
                producer.produce(s.topic_prefix + "alerts", key=host.encode(), value=encode(a))
                producer.flush(10)
                sent[host] = time.time()
                i += 1
                if exited_by_itself(worker):
                    exits += 1
                    worker = start_agents(s, config, log)
                time.sleep(1.0)
            storm.join(300)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(seen) < len(sent):
                if exited_by_itself(worker):
                    exits += 1
                    worker = start_agents(s, config, log)
                time.sleep(1.0)
            if exited_by_itself(worker):
                exits += 1
        finally:
            stop.set()
            follower.join(10)
            kill9(worker)
    latencies = [min(seen[h]) - t for h, t in sent.items() if h in seen]
    lost = sum(1 for h in sent if h not in seen)
    # one trigger per target (on-call DM and team channel): more is a page sent twice
    per_probe = Counter(len(v) for v in seen.values())
    duplicated = sum(len(v) - 2 for v in seen.values() if len(v) > 2)
    worst = max(latencies, default=None)
    notes = [f"{len(sent)} probes, {alerts} storm alerts into one group",
             f"probe pages per probe: {dict(per_probe)}",
             f"probe latency max {worst or 0:.1f}s (target {target:.0f}s)"]  # fmt: skip
    ok = not lost and not duplicated and not exits and worst is not None and worst <= target
    return Row(f"storm {alerts:,} alerts/1 group", 1, lost, duplicated, worst, exits, ok, rerun,
               notes)  # fmt: skip
