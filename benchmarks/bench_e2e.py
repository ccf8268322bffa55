"""End to end: a sample that crosses a threshold -> the Slack API call for its incident.

The whole pipeline as separate processes on the real broker: processor (default
rule pack plus a `for: 0` critical probe rule), agents (example config,
group_wait 0 for critical) and notifier (the real slack-sdk client pointed at a
local fake Slack that stamps each call's arrival). A background fleet of
10,000 healthy series sends 50,000 samples/s; every 0.5 s one new host sends a
sample above the probe's threshold. Rerun: `uv run python -m benchmarks e2e`.

Two latencies per probe, both to the first Slack call naming its host:
- pipeline: from the moment a decision is possible (the later of the send and the
  end of the 1 s window holding the sample; allowed_lateness is 0 s here), which is
  what tocsin adds;
- from send: what a responder sees, including the wait for the window to close.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

RATE = 50_000  # samples/s, background plus probes
SECONDS = 40
PROBE_EVERY = 0.5
HOSTS = 2_500  # x4 gauges = 10,000 series
GAUGES = ("cpu_percent", "memory_percent", "disk_iowait_ms", "network_latency_ms")
PROBE_RULES = """\
settings: {allowed_lateness: 0s, max_future_skew: 5m}
rules:
  - name: probe_critical
    signal: {kind: metric, metric: probe_value}
    aggregation: max
    window: {size: 1s}
    condition: {op: ">", threshold: 100}
    group_by: [host]
    severity: critical
    summary: "probe {host} at {value:.0f}"
"""


def _settings() -> KafkaSettings:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"e2e{uuid.uuid4().hex[:6]}.")


def _start(name: str, args: list[str], env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    log = (tmp / f"{name}.log").open("ab")
    cmd = [sys.executable, "-m", "streams.cli.main", "run", *args, "--health-port", "0"]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _templates() -> list[tuple[bytes, bytes, bytes]]:
    """(key, value before the timestamp, value after it) per background series: the
    timestamp is the only part that changes, so the load generator stays cheap."""
    out = []
    for h in range(HOSTS):
        host, service = f"host-{h:05d}", f"svc-{h % 250:03d}"
        for i, name in enumerate(GAUGES):
            value = (20 + h % 40, 40 + h % 40, 1 + h % 5, 0.3 + (h % 5) / 10)[i]
            labels = f'{{"host":"{host}","service":"{service}"}}'
            head = f'{{"name":"{name}","value":{float(value)},"labels":{labels},"time":"'.encode()
            out.append((f"{name}{{host={host}}}".encode(), head, b'"}'))
    return out


def _load(p: Producer, topic: str, stop_at: float, sent: dict[str, float]) -> int:
    templates = _templates()
    n = probe = 0
    started = time.time()
    next_probe = started + 5  # let the workers settle
    while (now := time.time()) < stop_at:
        ts = datetime.fromtimestamp(now, UTC).isoformat().encode()
        # 10 ms of load at a time, then catch up with the schedule
        for _ in range(RATE // 100):
            key, head, tail = templates[n % len(templates)]
            while True:
                try:
                    p.produce(topic, key=key, value=head + ts + tail)
                    break
                except BufferError:
                    p.poll(0.01)
            n += 1
        # the last probe's window closes only when later samples move the watermark on
        if now >= next_probe and now < stop_at - 3:
            host = f"probe-{probe:04d}"
            value = (f'{{"name":"probe_value","value":500.0,"labels":{{"host":"{host}"}},'
                     f'"time":"{ts.decode()}"}}').encode()  # fmt: skip
            p.produce(topic, key=host.encode(), value=value)
            sent[host] = max(now, float(int(now) + 1))  # its window [s, s+1) closes at s+1
            sent[host + "/send"] = now
            probe += 1
            next_probe += PROBE_EVERY
        p.poll(0)
        ahead = started + n / RATE - time.time()
        if ahead > 0:
            time.sleep(ahead)
    p.flush(60)
    return n


def _follow(settings: KafkaSettings, catalog: Catalog, stamps: dict[str, dict[str, float]],
            stop: threading.Event) -> None:  # fmt: skip
    """When each probe's alert and first notification became visible (committed)."""
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "e2e-reader",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 5})  # fmt: skip
    c.subscribe([catalog.name("alerts"), catalog.name("notifications")])
    while not stop.is_set():
        m = c.poll(0.05)
        if m is None or m.error():
            continue
        host = str(orjson.loads(m.value() or b"{}").get("labels", {}).get("host", ""))
        if host.startswith("probe-"):
            stage = "alert" if m.topic() == catalog.name("alerts") else "notification"
            stamps[stage].setdefault(host, time.time())
    c.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def main() -> int:
    settings = _settings()
    try:
        return _report(settings)
    finally:
        delete_prefixed(make_admin(settings), settings.topic_prefix)


def _report(settings: KafkaSettings) -> int:
    catalog = Catalog(settings)
    create_topics(make_admin(settings), catalog)
    first_call: dict[str, float] = {}
    lock = threading.Lock()

    def stamp(method: str, args: dict[str, Any]) -> None:
        if method != "chat.postMessage":
            return
        text = str(args.get("text") or "")
        at = time.time()
        for word in text.split():
            if word.startswith("probe-"):
                with lock:
                    first_call.setdefault(word, at)

    slack = FakeSlack(on_call=stamp)
    with tempfile.TemporaryDirectory() as d, serve(slack.app()) as url:
        tmp = Path(d)
        (tmp / "probe.yaml").write_text(PROBE_RULES)
        env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
               "TOCSIN_TOPIC_PREFIX": settings.topic_prefix, "TOCSIN_LOG_FORMAT": "json",
               "TOCSIN_SLACK_BASE_URL": f"{url}/api/", "TOCSIN_LOG_LEVEL": "warning"}  # fmt: skip
        procs = {
            "processor": _start("processor", ["processor", "--rules", str(tmp / "probe.yaml"),
                                              "--rules", "rules/default.yaml",
                                              "--instance-id", "e2e"], env, tmp),
            "agents": _start("agents", ["agents", "--config", "examples/config",
                                        "--tick-every", "0.2",
                                        "--datadir", str(tmp / "faust")], env, tmp),
            "notifier": _start("notifier", ["notifier"], env, tmp),
        }  # fmt: skip
        sent: dict[str, float] = {}
        stamps: dict[str, dict[str, float]] = {"alert": {}, "notification": {}}
        stop = threading.Event()
        reader = threading.Thread(target=_follow, args=(settings, catalog, stamps, stop))
        reader.start()
        try:
            time.sleep(8)  # group joins; the first probe goes 5 s after the load starts
            p = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5,
                          "batch.size": 1_000_000, "compression.type": "lz4",
                          "queue.buffering.max.messages": 1_000_000})  # fmt: skip
            cpu0 = {k: _cpu_seconds(v.pid) for k, v in procs.items()}
            t0 = time.time()
            n = _load(p, catalog.name("metrics"), t0 + SECONDS, sent)
            elapsed = time.time() - t0
            cpu = {k: _cpu_seconds(v.pid) - cpu0[k] for k, v in procs.items()}
            probes = [h for h in sent if not h.endswith("/send")]
            deadline = time.monotonic() + 20  # the last probes' pages
            while time.monotonic() < deadline and not set(probes) <= set(first_call):
                time.sleep(0.2)
            load = os.getloadavg()[0]
        finally:
            stop.set()
            reader.join(10)
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, 9)
                proc.wait()
    seen = [h for h in probes if h in first_call]
    pipeline = sorted((first_call[h] - sent[h]) * 1000 for h in seen)
    from_send = sorted((first_call[h] - sent[h + "/send"]) * 1000 for h in seen)
    print(f"machine: {os.cpu_count()} cores shared by the broker, the load generator and "
          f"three workers; load average {load:.1f}")  # fmt: skip
    print(f"| {'measure':52} | {'result':>14} | {'target':>10} |")
    print(f"|{'-' * 54}|{'-' * 16}|{'-' * 12}|")
    print(f"| {'offered load (samples/s, 10,000 series + probes)':52} | {n / elapsed:>14,.0f} |"
          f" {'50,000':>10} |")  # fmt: skip
    print(f"| {'probes paged in Slack / sent':52} | {f'{len(seen)} / {len(probes)}':>14} |"
          f" {'all':>10} |")  # fmt: skip
    if pipeline:
        print(f"| {'pipeline latency p50 (decision possible -> Slack)':52} |"
              f" {_pct(pipeline, 50):>11,.0f} ms | {'':>10} |")  # fmt: skip
        print(f"| {'pipeline latency p99':52} | {_pct(pipeline, 99):>11,.0f} ms |"
              f" {'< 1,000 ms':>10} |")  # fmt: skip
        print(f"| {'from the send, p50 / p99 (incl. the 1 s window)':52} |"
              f" {f'{_pct(from_send, 50):,.0f} / {_pct(from_send, 99):,.0f} ms':>14} |"
              f" {'':>10} |")  # fmt: skip
    alert_at, note_at = stamps["alert"], stamps["notification"]
    stages = (
        ("  processor: decision possible -> alert committed", alert_at, sent),
        ("  agents: alert -> notification committed", note_at, alert_at),
        ("  notifier: notification -> Slack call", first_call, note_at),
    )
    for label, later, earlier in stages:
        xs = sorted((later[h] - earlier[h]) * 1000 for h in probes if h in later and h in earlier)
        if xs:
            print(f"| {label:52} | {f'{_pct(xs, 50):,.0f} / {_pct(xs, 99):,.0f} ms':>14} |"
                  f" {'p50 / p99':>10} |")  # fmt: skip
    for name, secs in cpu.items():
        print(f"| {f'{name} CPU (share of one core)':52} | {secs / elapsed:>13.0%} | {'':>10} |")
    for h in sorted(set(probes) - set(seen)):
        print(f"not paged: {h} (alert committed: {h in alert_at}, "
              f"notification committed: {h in note_at})")  # fmt: skip
    print("rerun: uv run python -m benchmarks e2e")
    ok = bool(pipeline) and len(seen) == len(probes) and _pct(pipeline, 99) < 1000
    return 0 if ok else 1
