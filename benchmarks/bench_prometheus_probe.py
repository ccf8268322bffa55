"""Crossing sample -> Slack page on real Prometheus data, quiet and under 50,000 samples/s.

A real Prometheus (Debian's package) scrapes a real node exporter
(`prometheus-node-exporter`) every 5 s and remote-writes to the gateway
(`tocsin run gateway`) with the queue docs/connectors.md recommends; the processor
runs the default rule pack plus an early `for: 0` probe rule on a gauge the benchmark
flips through node exporter's textfile collector; agents (example config: critical
alerts page without group_wait) and notifier page a local fake Slack. Each probe
series (one host each, so one incident each) is flipped up, left up until its page,
flipped down until its alert resolved, and flipped up again after a random pause, so
the crossings fall anywhere in the scrape interval and in the probes' windows.

Latency per crossing: from the crossing sample's timestamp (the scrape of the first
sample above the threshold, read back from Prometheus' own storage) to the fake
Slack's arrival of the page (the reopened incident's page for later crossings).
The early alert's `produced_at` must be that same timestamp; the benchmark checks it.

The second run adds a load generator (benchmarks/remote_write_load.py, its own
process) remote-writing 25,000 series every 0.5 s to the same gateway, and reports
the rate the gateway accepted. Rerun: `uv run python -m benchmarks prometheus_probe`
(TOCSIN_BENCH_PROBES probe series, TOCSIN_BENCH_CROSSINGS crossings each,
TOCSIN_BENCH_LOAD=quiet or load for one of the two runs, TOCSIN_BENCH_LOAD_RATE its
samples/s).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer

from benchmarks.prometheus_stack import PROMETHEUS, TOKEN, Stack, bootstrap, free_port, stack

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
MARK = "node-probe:"
SCRAPE_S = 5
LOAD_RATE = int(os.environ.get("TOCSIN_BENCH_LOAD_RATE", "50000"))
LOAD_SERIES = 25_000
# what docs/connectors.md recommends: a batch leaves at most 1 s after its first sample
QUEUE = "{batch_send_deadline: 1s}"
RULES = f"""\
settings: {{allowed_lateness: 30s}}
rules:
  - name: node_probe
    description: The benchmark's probe gauge is up.
    signal: {{kind: metric, metric: tocsin_probe}}
    aggregation: max
    window: {{size: 5s}}
    condition: {{op: ">", threshold: 0.5}}
    early: true
    group_by: [host]
    severity: critical
    summary: "{MARK} {{host}} up"
"""
SCRAPE = """\
  - job_name: node
    static_configs: [{targets: ["{node}"]}]"""


class Probes:
    """The textfile the node exporter serves: one gauge per probe host."""

    def __init__(self, directory: Path, n: int) -> None:
        self.directory = directory
        self.up = {f"probe-{i:02d}": False for i in range(n)}
        self.write()

    def set(self, host: str, up: bool) -> None:
        self.up[host] = up
        self.write()

    def write(self) -> None:
        lines = ["# HELP tocsin_probe The benchmark's probe.", "# TYPE tocsin_probe gauge"]
        lines += [f'tocsin_probe{{host="{h}"}} {int(v)}' for h, v in self.up.items()]
        tmp = self.directory / "probe.prom.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.directory / "probe.prom")  # atomic: a scrape sees one version


class Alerts(threading.Thread):
    """The probe rule's alerts as they are committed: per host, (status, produced_at)."""

    def __init__(self, st: Stack) -> None:
        super().__init__(daemon=True)
        # per host: (status, produced_at, early, when the broker took it), epoch seconds
        self.by_host: dict[str, list[tuple[str, float, bool, float]]] = {}
        self.stop = threading.Event()
        self.c = Consumer({"bootstrap.servers": st.settings.bootstrap_servers,
                           "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                           "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                           "enable.auto.commit": False})  # fmt: skip
        self.c.subscribe([st.catalog.name("alerts")])

    def run(self) -> None:
        while not self.stop.is_set():
            m = self.c.poll(0.2)
            if m is None or m.error():
                continue
            doc = orjson.loads(m.value() or b"{}")
            if doc.get("rule") == "node_probe":
                at = datetime.fromisoformat(doc["produced_at"]).timestamp()
                self.by_host.setdefault(doc["labels"]["host"], []).append(
                    (doc["status"], at, bool(doc.get("early")), m.timestamp()[1] / 1000.0)
                )
        self.c.close()

    def count(self, host: str, status: str) -> int:
        return sum(1 for s, *_ in list(self.by_host.get(host, [])) if s == status)


def _pages(st: Stack, host: str) -> list[float]:
    """Arrivals of the pages (new or reopened incident, not resolutions) for `host`."""
    return [at for at, method, args in list(st.slack_calls)
            if method == "chat.postMessage" and not args.get("thread_ts")
            and f"{MARK} {host} up" in str(args.get("text") or "")
            and "white_check_mark" not in str(args.get("text"))]  # fmt: skip


def _flip(st: Stack, probes: Probes, alerts: Alerts, crossings: int, deadline: float) -> None:
    """Each probe crosses `crossings` times: up until paged, down until resolved."""
    rnd = random.Random(7)
    hosts = list(probes.up)
    done = dict.fromkeys(hosts, 0)
    phase = dict.fromkeys(hosts, "idle")
    paged = dict.fromkeys(hosts, 0)  # pages (each to a user and a channel) before the flip
    due = {h: time.monotonic() + rnd.uniform(0, 2 * SCRAPE_S) for h in hosts}
    while time.monotonic() < deadline and any(phase[h] != "idle" or done[h] < crossings
                                              for h in hosts):  # fmt: skip
        now = time.monotonic()
        for h in hosts:
            if phase[h] == "idle" and done[h] < crossings and now >= due[h]:
                paged[h] = len(_pages(st, h))
                probes.set(h, True)
                phase[h], due[h] = "up", now + 60
            elif phase[h] == "up" and (len(_pages(st, h)) > paged[h] or now > due[h]):
                done[h] += 1
                probes.set(h, False)
                phase[h], due[h] = "down", now + 90
            elif phase[h] == "down" and (alerts.count(h, "resolved") >= done[h] or now > due[h]):
                phase[h], due[h] = "idle", now + rnd.uniform(0, 2 * SCRAPE_S)
        time.sleep(0.05)


def _crossings(prom: str) -> dict[str, list[float]]:
    """Per host, the timestamps of samples above the threshold after one below it (or
    first), from Prometheus' own storage: the scrape times of the crossings."""
    r = httpx.get(f"{prom}/api/v1/query", params={"query": "tocsin_probe[1h]"}, timeout=30)
    out: dict[str, list[float]] = {}
    for series in r.json()["data"]["result"]:
        before = 0.0
        for at, value in series["values"]:
            if float(value) > 0.5 >= before:
                out.setdefault(series["metric"]["host"], []).append(float(at))
            before = float(value)
    return out


def _request_seconds(prom: str) -> float:
    """Prometheus' own mean duration of a remote-write request (to the gateway's answer,
    which comes once Kafka acknowledged the samples)."""
    total = count = float("nan")
    for line in httpx.get(f"{prom}/metrics", timeout=30).text.splitlines():
        if line.startswith("prometheus_remote_storage_sent_batch_duration_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_remote_storage_sent_batch_duration_seconds_count"):
            count = float(line.rsplit(" ", 1)[1])
    return total / count if count else float("nan")


def _load_stats(path: Path) -> dict[str, Any]:
    try:
        return dict(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError):
        return {}


def _run(servers: str, n_probes: int, crossings: int, load: bool) -> dict[str, Any]:
    assert NODE_EXPORTER is not None
    with stack(servers, RULES, f"probe-{uuid.uuid4().hex[:4]}") as st:
        textdir = st.tmp / "textfile"
        textdir.mkdir()
        probes = Probes(textdir, n_probes)
        node = f"127.0.0.1:{free_port()}"
        st.process("node_exporter", [NODE_EXPORTER, f"--web.listen-address={node}",
                                     f"--collector.textfile.directory={textdir}"])  # fmt: skip
        stats = st.tmp / "load.json"
        budget = 60 + crossings * 45
        if load:
            st.process("load", [sys.executable, "-m", "benchmarks.remote_write_load",
                                f"{st.gateway}/api/v1/write", TOKEN, "--rate", str(LOAD_RATE),
                                "--series", str(LOAD_SERIES), "--seconds", str(budget + 60),
                                "--stats", str(stats)])  # fmt: skip
        alerts = Alerts(st)
        alerts.start()
        prom_port = st.prometheus(SCRAPE_S, SCRAPE.replace("{node}", node), QUEUE)
        prom = f"http://127.0.0.1:{prom_port}"
        # three scrapes in: the node exporter's series are known, none new any more
        time.sleep(3 * SCRAPE_S + 2)
        loaded_from = _load_stats(stats)
        _flip(st, probes, alerts, crossings, time.monotonic() + budget)
        loaded_to = _load_stats(stats)
        alerts.stop.set()
        alerts.join()
        crossed = _crossings(prom)
        result: dict[str, Any] = {"latency": [], "missed": 0, "early_matches": 0, "rate": None,
                                  "committed": [], "request": _request_seconds(prom)}  # fmt: skip
        for host, times in crossed.items():
            pages = _pages(st, host)
            fired = {at: took for s, at, early, took in alerts.by_host.get(host, [])
                     if s == "firing" and early}  # fmt: skip
            for k, at in enumerate(times):
                later = times[k + 1] if k + 1 < len(times) else float("inf")
                page = next((p for p in pages if at <= p < later), None)
                if page is None:
                    result["missed"] += 1
                    continue
                result["latency"].append(page - at)
                took = next((fired[f] for f in fired if abs(f - at) < 0.001), None)
                if took is not None:
                    result["early_matches"] += 1
                    result["committed"].append(took - at)
        if load and not (loaded_from and loaded_to):
            raise RuntimeError(f"the load generator wrote no figures:\n{st.logs()}")
        if load:
            span = loaded_to["at"] - loaded_from["at"]
            result["rate"] = (loaded_to["accepted"] - loaded_from["accepted"]) / span
            result["refused"] = loaded_to["refused"] + loaded_to["failed"]
        if os.environ.get("TOCSIN_BENCH_DEBUG"):
            for host, times in crossed.items():
                print(host, "crossings", times, "\n  alerts", alerts.by_host.get(host),
                      "\n  pages", _pages(st, host))  # fmt: skip
            print([(at, m, str(a.get("text"))[:80]) for at, m, a in st.slack_calls])
        if not result["latency"]:
            raise RuntimeError(f"no crossing paged:\n{st.logs()}")
    return result


def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    if PROMETHEUS is None or NODE_EXPORTER is None:
        print("prometheus or prometheus-node-exporter is not installed (make peers)")
        return 1
    servers = bootstrap()
    n_probes = int(os.environ.get("TOCSIN_BENCH_PROBES", "20"))
    crossings = int(os.environ.get("TOCSIN_BENCH_CROSSINGS", "3"))
    rows = []
    failed = False
    modes = {"quiet": (False,), "load": (True,)}.get(os.environ.get("TOCSIN_BENCH_LOAD", ""))
    for load in modes or (False, True):
        r = _run(servers, n_probes, crossings, load)
        lat = r["latency"]
        p99 = _p(lat, 0.99)
        failed |= p99 >= 5 or r["missed"] > 0 or len(lat) < 50
        failed |= load and r["rate"] < 0.95 * LOAD_RATE  # not the figure asked for
        background = (f"{r['rate']:,.0f} of {LOAD_RATE:,}/s accepted, {r['refused']:,} refused"
                      if load else "none")  # fmt: skip
        rows.append(row := f"| {background:>40} | {len(lat):>4} / {len(lat) + r['missed']:<4} | "
                    f"{r['early_matches']:>5} | {statistics.median(lat):>6.2f} s | "
                    f"{_p(lat, 0.9):>6.2f} s | {p99:>6.2f} s | {max(lat):>6.2f} s | "
                    f"{_p(r['committed'] or [float('nan')], 0.99):>13.2f} s | "
                    f"{r['request']:>13.2f} s |")  # fmt: skip
        print(row, flush=True)  # as it comes: the table follows
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores shared with other work (load average {load_avg}); "
          f"node exporter scraped every {SCRAPE_S} s, remote_write queue_config {QUEUE}; "
          f"{n_probes} probe hosts x {crossings} crossings; tocsin's default settings")  # fmt: skip
    print(f"| {'background load at the gateway':>40} | paged / crossings | early | "
          f"   p50   |   p90   |   p99   |   max   | alert committed, p99 | "
          f"remote-write request |")  # fmt: skip
    print(f"|{'-' * 42}|{'-' * 19}|{'-' * 7}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|"
          f"{'-' * 22}|{'-' * 22}|")  # fmt: skip
    print("\n".join(rows))
    print(
        "(crossing sample's scrape timestamp -> the page at the fake Slack; target p99 < 5 s "
        "over >= 50 crossings; `early`: crossings whose early alert carried that timestamp; "
        "alert committed: from that timestamp to the alert on `alerts`; remote-write request: "
        "Prometheus' mean time to the gateway's answer)"
    )
    print("rerun: uv run python -m benchmarks prometheus_probe")
    return 1 if failed else 0
