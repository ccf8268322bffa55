"""`tocsin demo`: the pipeline end to end on the local broker.

A synthetic fleet (an hour of healthy history, then a fault timeline) flows into
`metrics` and `logs`; a processor and an agents worker run as separate processes;
the demo shows alerts and pages as they happen, acknowledges one incident like a
responder would, lets another escalate, and prints every incident's timeline with
time to acknowledge and time to resolve. `--speed` compresses the scenario's event
time; the workers run their production code paths.

Without SLACK_BOT_TOKEN the notifier's real Slack sink talks to a local fake Slack
Web API that the demo runs and whose calls it prints and counts; with the token
(and SLACK_SIGNING_SECRET) the same demo posts to a real workspace.
"""

from __future__ import annotations

import html
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from confluent_kafka import Consumer, Producer

from connectors.slack.signature import SignatureVerifier
from schemas import (
    Alert,
    DeliveryReceipt,
    IncidentEvent,
    LogRecord,
    MetricSample,
    Notification,
    decode,
    encode,
)
from streams.admin import create_topics
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.demo.workload import FAULTS, Fleet
from streams.kafka import make_admin, make_producer, read_topic
from streams.notifier.console import render
from streams.settings import KafkaSettings

HISTORY_MIN = 60  # healthy history first: the anomaly detector's warm-up
SCENARIO_MIN = 20
Echo = Callable[[str], None]


class Demo:
    def __init__(self, settings: KafkaSettings, workdir: Path, speed: float, echo: Echo) -> None:
        self.settings = settings
        self.catalog = Catalog(settings)
        self.workdir = workdir
        self.speed = speed
        self.echo = echo
        self.procs: list[subprocess.Popen[bytes]] = []
        self.faults = tuple(replace(f, start_min=f.start_min + HISTORY_MIN,
                                    end_min=f.end_min + HISTORY_MIN) for f in FAULTS)  # fmt: skip
        self.fired: dict[str, Alert] = {}
        self.resolved: set[str] = set()
        self.pages: list[Notification] = []
        self.acked: set[str] = set()
        self.signing_secret = os.environ.get("SLACK_SIGNING_SECRET") or secrets.token_hex(16)
        self.gateway_port = 0
        self.slack: FakeSlack | None = None  # None: a real workspace (SLACK_BOT_TOKEN)
        self._stack = ExitStack()

    # -- processes --------------------------------------------------------------

    def start_workers(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yaml"
        text = Path("examples/config/tocsin.yaml").read_text()
        # the agents run on the wall clock, so the demo compresses their timers like the
        # scenario's event time: level 1 escalates after 2 scenario minutes, warnings wait
        # 30 scenario seconds; level 2 never times out within the demo
        escalate = max(2, round(120 / self.speed))
        wait = max(1, round(30 / self.speed))
        text = text.replace("timeout: 5m", f"timeout: {escalate}s")
        text = text.replace("timeout: 10m", "timeout: 1h")
        config.write_text(text.replace("group_wait: 30s", f"group_wait: {wait}s"))
        env = {
            **os.environ,
            **self.settings.environment(),  # the cluster, its TLS and SASL settings
            "TOCSIN_LOG_FORMAT": "json",
            # the responder's click is signed like Slack signs it; a real secret wins
            "SLACK_SIGNING_SECRET": self.signing_secret,
        }
        if not os.environ.get("SLACK_BOT_TOKEN") and not os.environ.get("SLACK_BOT_TOKEN_FILE"):
            self.slack = FakeSlack(on_call=self._slack_call)
            url = self._stack.enter_context(serve(self.slack.app()))
            env["TOCSIN_SLACK_BASE_URL"] = f"{url}/api/"
            self.echo(f"no SLACK_BOT_TOKEN: Slack calls go to a local fake Slack at {url}")
        self.gateway_port = _free_port()
        cli = [sys.executable, "-m", "streams.cli.main", "run"]
        for name, args in (
            ("processor", ["processor", "--rules", "rules/default.yaml", "--health-port", "0",
                           "--instance-id", "demo"]),
            ("agents", ["agents", "--config", str(config), "--health-port", "0",
                        "--tick-every", "0.5", "--datadir", str(self.workdir / "faust")]),
            ("notifier", ["notifier", "--health-port", "0"]),
            ("gateway", ["gateway", "--host", "127.0.0.1", "--port", str(self.gateway_port),
                         "--config", str(config)]),
        ):  # fmt: skip
            log = (self.workdir / f"{name}.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [*cli, *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            self.echo(f"started {name} (log: {self.workdir / f'{name}.log'})")

    def stop_workers(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self._stack.close()

    def _slack_call(self, method: str, args: dict[str, Any]) -> None:
        """What the notifier just asked Slack to do, as a responder would see it."""
        if method in ("chat.postMessage", "chat.update"):
            verb = "reply" if args.get("thread_ts") else (
                "post" if method == "chat.postMessage" else "edit")  # fmt: skip
            text = html.unescape(str(args.get("text") or "")).replace("\n", " ")
            self.echo(f"SLACK   {verb:5} {args.get('channel')}: {text[:110]}")

    # -- the story --------------------------------------------------------------

    def run(self) -> int:
        create_topics(make_admin(self.settings), self.catalog)
        self.start_workers()
        reader = Consumer(
            self.settings.client_config()
            | {
                "group.id": f"{self.settings.topic_prefix}demo-reader",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        reader.subscribe([self.catalog.name(t) for t in ("alerts", "notifications")])
        producer = make_producer(self.settings)
        start = datetime.now(UTC) - timedelta(minutes=HISTORY_MIN + SCENARIO_MIN + 1)
        fleet = Fleet(start, faults=self.faults)
        self.echo(f"sending {HISTORY_MIN} minutes of healthy history ...")
        for tick in fleet.ticks(HISTORY_MIN):
            self._send(producer, tick.metrics, tick.logs)
        producer.flush(60)
        self.echo(f"fault timeline: {SCENARIO_MIN} minutes of event time at {self.speed:g}x")
        for f in self.faults:
            self.echo(f"  {f.start_min - HISTORY_MIN:>4.0f}-{f.end_min - HISTORY_MIN:<4.0f} min "
                      f"{f.name} on {f.target} (expect {f.expect_rule})")  # fmt: skip
        wall0 = time.monotonic()
        for tick in fleet.ticks(SCENARIO_MIN, from_minute=HISTORY_MIN):
            due = (tick.minute - HISTORY_MIN) * 60 / self.speed
            while time.monotonic() - wall0 < due:
                self._observe(reader, producer, timeout=0.05)
            self._send(producer, tick.metrics, tick.logs)
            producer.poll(0)
        producer.flush(60)
        self.echo("faults over; waiting for every alert to resolve ...")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not self._all_resolved():
            self._observe(reader, producer, timeout=0.2)
        reader.close()
        self.stop_workers()
        return self._report()

    def _send(self, p: Producer, metrics: list[MetricSample], logs: list[LogRecord]) -> None:
        records = [(self.catalog.name("metrics"), m.series_key(), encode(m)) for m in metrics]
        records += [(self.catalog.name("logs"), r.labels["service"], encode(r)) for r in logs]
        for topic, key, value in records:
            while True:
                try:
                    p.produce(topic, key=key.encode(), value=value)
                    break
                except BufferError:
                    p.poll(0.2)  # the local queue is full: let deliveries drain
        p.poll(0)

    def _observe(self, reader: Consumer, producer: Producer, timeout: float) -> None:
        msg = reader.poll(timeout)
        if msg is None or msg.error():
            return
        if msg.topic() == self.catalog.name("alerts"):
            alert = decode(Alert, msg.value() or b"")
            if alert.status == "firing":
                self.fired[alert.rule + "/" + alert.fingerprint] = alert
                self.echo(f"ALERT   {alert.severity:8} {alert.summary}")
            elif alert.status == "resolved":
                self.resolved.add(alert.rule + "/" + alert.fingerprint)
                self.echo(f"RESOLVE {alert.rule} {_where(alert.labels)}")
            return
        note = decode(Notification, msg.value() or b"")
        self.pages.append(note)
        self.echo(f"PAGE    {render(note)}")
        # a responder acknowledges the memory leak's page; the others are left to escalate
        if (note.kind == "trigger" and note.channel == "slack_dm" and not self.acked
                and "Memory" in note.title):  # fmt: skip
            self.acked.add(note.incident_id)
            answer = self._click("tocsin_ack", note.incident_id, user=note.target)
            self.echo(f"        {note.target} clicks Acknowledge on {note.incident_id}: {answer}")

    def _click(self, action_id: str, incident_id: str, user: str) -> str:
        """POST a block_actions payload to the gateway, signed as Slack signs it."""
        payload = {"type": "block_actions", "user": {"id": user},
                   "actions": [{"action_id": action_id, "value": incident_id}]}  # fmt: skip
        body = urlencode({"payload": orjson.dumps(payload).decode()}).encode()
        ts = str(int(time.time()))
        signature = SignatureVerifier(self.signing_secret).sign(ts, body)
        try:
            resp = httpx.post(f"http://127.0.0.1:{self.gateway_port}/slack/interactions",
                              content=body, timeout=10, headers={
                                  "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
                                  "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        except httpx.HTTPError as exc:
            return f"gateway unreachable: {exc}"
        return f"{resp.status_code} {resp.json().get('text', '')}"

    def _all_resolved(self) -> bool:
        return bool(self.fired) and set(self.fired) <= self.resolved

    def _report(self) -> int:
        events = _read_ledger(self.settings, self.catalog)
        by_incident: dict[str, list[IncidentEvent]] = defaultdict(list)
        for e in events:
            by_incident[e.incident_id].append(e)
        self.echo("\n=== incident timelines ===")
        for iid, evs in sorted(by_incident.items()):
            evs.sort(key=lambda e: e.seq)
            opened = evs[0].at
            self.echo(f"\n{iid}: {evs[0].message}")
            ack = next((e.at for e in evs if e.kind == "acknowledged"), None)
            res = next((e.at for e in evs if e.kind == "resolved"), None)
            for e in evs:
                self.echo(
                    f"  +{(e.at - opened).total_seconds():6.1f}s {e.kind:14} {e.message[:90]}"
                )
            tta = f"{(ack - opened).total_seconds():.1f}s" if ack else "-"
            ttr = f"{(res - opened).total_seconds():.1f}s" if res else "-"
            self.echo(f"  time to acknowledge {tta}, time to resolve {ttr}")
        receipts = [decode(DeliveryReceipt, v)
                    for v in read_topic(self.settings, self.catalog.name("receipts"))]  # fmt: skip
        delivered = sum(r.outcome == "delivered" for r in receipts)
        self.echo(f"\nnotifier: {delivered} deliveries, "
                  f"{sum(r.outcome != 'delivered' for r in receipts)} failed or retried attempts "
                  f"(see {self.workdir / 'notifier.log'} for what it posted)")  # fmt: skip
        if self.slack is not None:
            calls = Counter(self.slack.methods())
            posts = sum(len(msgs) for msgs in self.slack.messages.values())
            self.echo(f"fake Slack: {posts} messages in {len(self.slack.messages)} channels, "
                      + ", ".join(f"{n} {m}" for m, n in sorted(calls.items())))  # fmt: skip
        missing = [f for f in self.faults if not any(a.rule == f.expect_rule and f.target in
                   a.labels.values() for a in self.fired.values())]  # fmt: skip
        unpaged = [f for f in self.faults if not any(
            n.kind == "trigger" and n.labels.get("alertname") == f.expect_rule
            and f.target in n.labels.values() for n in self.pages)]  # fmt: skip
        self.echo("\n=== detection ===")
        for f in self.faults:
            status = "MISSED" if f in missing else "detected"
            paged = "NOT NOTIFIED" if f in unpaged else "notified"
            self.echo(f"  {f.name:22} {f.expect_rule:26} {status}, {paged}")
        return 1 if missing or unpaged or not self._all_resolved() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _where(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={labels[k]}" for k in ("service", "host") if k in labels)


def _read_ledger(settings: KafkaSettings, catalog: Catalog) -> list[IncidentEvent]:
    return [decode(IncidentEvent, v) for v in read_topic(settings, catalog.name("incident-events"))]
