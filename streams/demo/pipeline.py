"""`tocsin demo`: the pipeline end to end on the local broker.

A synthetic fleet (an hour of healthy history, then a fault timeline) flows into
`metrics` and `logs`; a processor and an agents worker run as separate processes;
the demo shows alerts and pages as they happen, acknowledges one incident like a
responder would, lets others escalate, and prints every incident's timeline, the
story against the fault plan, and MTTA/MTTR. `--speed` compresses the scenario's event
time and, by the same factor, the agents' timers (timescale.py); the workers run their
production code paths. The fault plan keeps every incident minutes away from its
escalation timeout, so the story is the same on every run and on a loaded machine.

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
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from confluent_kafka import Consumer, KafkaException, Producer

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
from schemas.config import load_config
from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.demo import console as demo_console
from streams.demo import tenants as demo_tenants
from streams.demo.fake_slack import FakeSlack, serve
from streams.demo.readiness import wait_for_workers
from streams.demo.report import Channels, Observed, about, incidents, report
from streams.demo.timescale import ScenarioClock, mmss
from streams.demo.workload import FAULTS, Fleet
from streams.kafka import make_admin, make_producer, read_topic
from streams.notifier.console import render
from streams.runtime.produce import produce
from streams.settings import KafkaSettings, secret

HISTORY_MIN = 60  # healthy history first: the anomaly detector's warm-up
SCENARIO_MIN = 20
EXAMPLE_CONFIG = Path("examples/config/tocsin.yaml")
Echo = Callable[[str], None]


class Demo:
    def __init__(self, settings: KafkaSettings, workdir: Path, speed: float, echo: Echo,
                 console: bool = False) -> None:  # fmt: skip
        self.settings = settings
        # with the console: a projector and the API worker too, left running after the story
        self.console = console
        self.console_url = self.console_token = ""
        self.acme_token = ""
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
        self.ledger: list[IncidentEvent] = []
        self.receipts: list[DeliveryReceipt] = []
        self.titles: dict[str, str] = {}  # incident -> title, for the live lines
        self.clock: ScenarioClock | None = None  # set when the fault plan starts
        self.pagerduty_keyless = not secret("PAGERDUTY_ROUTING_KEYS")
        self.suppressed: dict[str, str] = {}  # fingerprint -> why the agents muted it
        self._untold: dict[str, str] = {}  # the same, for alerts not read yet
        self._agents_log_at = 0
        self.signing_secret = os.environ.get("SLACK_SIGNING_SECRET") or secrets.token_hex(16)
        self.gateway_port = self.agents_health_port = 0
        self.slack: FakeSlack | None = None  # None: a real workspace (SLACK_BOT_TOKEN)
        self._stack = ExitStack()

    # -- processes --------------------------------------------------------------

    def start_workers(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # two tenants: the provider's own fleet tells the story; acme's shop goes down after
        config, self.acme_token = demo_tenants.write_config(self.workdir, self.speed)
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
        self.agents_health_port = _free_port()
        cli = [sys.executable, "-m", "streams.cli.main", "run"]
        extra: list[tuple[str, list[str]]] = []
        if self.console:
            port = _free_port()
            extra, store_env, self.console_token = demo_console.workers(self.workdir, config,
                                                                        port)  # fmt: skip
            env.update(store_env)
            self.console_url = f"http://127.0.0.1:{port}"
        for name, args in (
            ("processor", ["processor", "--rules", "rules/default.yaml", "--config", str(config),
                           "--health-port", "0", "--instance-id", "demo"]),
            ("agents", ["agents", "--config", str(config),
                        "--health-port", str(self.agents_health_port),
                        "--tick-every", "0.5", "--datadir", str(self.workdir / "faust")]),
            ("notifier", ["notifier", "--health-port", "0"]),
            ("gateway", ["gateway", "--host", "127.0.0.1", "--port", str(self.gateway_port),
                         "--config", str(config)]),
            *extra,
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

    def delete_topics(self) -> str:
        """Delete every topic of this run (faust's changelogs included); say what happened."""
        try:
            deleted = delete_prefixed(make_admin(self.settings), self.settings.topic_prefix)
        except KafkaException as exc:
            return f"could not delete the topics {self.settings.topic_prefix}*: {exc}"
        return f"deleted this run's {len(deleted)} topics ({self.settings.topic_prefix}*)"

    def _slack_call(self, method: str, args: dict[str, Any]) -> None:
        """What the notifier just asked Slack to do, as a responder would see it."""
        if method in ("chat.postMessage", "chat.update"):
            verb = "reply" if args.get("thread_ts") else (
                "post" if method == "chat.postMessage" else "edit")  # fmt: skip
            text = html.unescape(str(args.get("text") or "")).replace("\n", " ")
            self._say(self._wall_now(), f"SLACK   {verb:5} {args.get('channel')}: {text[:100]}")

    def _wall_now(self) -> float | None:
        return self.clock.of_wall(datetime.now(UTC)) if self.clock else None

    def _say(self, scenario_s: float | None, text: str) -> None:
        """A live line, stamped with scenario time so it reads against the fault plan."""
        self.echo(f"{mmss(scenario_s) if scenario_s is not None else '  -  '} {text}")

    def _wait_for_workers(self) -> None:
        self.echo("waiting for every worker to join its consumer group ...")
        t0 = time.monotonic()
        groups = [self.settings.topic_prefix + g for g in
                  ("processor", "notifier", "tocsin-agents", "tocsin-agents-router")]  # fmt: skip
        urls = [f"http://127.0.0.1:{self.agents_health_port}/readyz",
                f"http://127.0.0.1:{self.gateway_port}/readyz"]  # fmt: skip
        waiting = wait_for_workers(make_admin(self.settings), groups, urls, timeout=240)
        if waiting:
            self.echo(f"  still not ready after 240 s: {', '.join(waiting)} (see the logs); "
                      "the story may come out late")  # fmt: skip
        else:
            self.echo(f"  ready after {time.monotonic() - t0:.1f} s")

    def _explain_time(self) -> None:
        cfg = load_config([EXAMPLE_CONFIG])
        levels = " then ".join(_d(lv.timeout) for lv in cfg.escalation_policies[0].levels)
        for line in (
            f"time scale: the scenario runs {self.speed:g}x faster than the wall clock "
            f"(1 scenario minute = {60 / self.speed:g} s).",
            f"  The agents decide on the wall clock, so they run {EXAMPLE_CONFIG} with every "
            f"timer divided by {self.speed:g}:",
            f"  group_wait {_d(cfg.grouping.group_wait)} (critical "
            f"{_d(cfg.grouping.group_wait_critical)}) and escalation after {levels} without "
            "an acknowledgement still mean that much scenario time.",
            "  Every line starts with scenario time (mm:ss), the clock of the fault plan: an "
            "ALERT with the event time of the window that decided it,",
            "  a PAGE or SLACK line with the moment it happened: about 30 s after its alert, "
            "since a window closes once samples are allowed_lateness (30s) past its end.",
        ):
            self.echo(line)

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
        topics = ("alerts", "notifications", "incident-events", "receipts")
        reader.subscribe([self.catalog.name(t) for t in topics])
        producer = make_producer(self.settings)
        # a whole minute: faults start and end on every rule window's boundary (workload.py)
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(
            minutes=HISTORY_MIN + SCENARIO_MIN + 1)  # fmt: skip
        fleet = Fleet(start, faults=self.faults)
        self.echo(f"sending {HISTORY_MIN} minutes of healthy history ...")
        for tick in fleet.ticks(HISTORY_MIN):
            self._send(producer, tick.metrics, tick.logs)
        producer.flush(60)
        self._wait_for_workers()
        self._explain_time()
        self.echo(f"fault plan: {SCENARIO_MIN} minutes of scenario time")
        for f in sorted(FAULTS, key=lambda f: f.start_min):
            self.echo(f"  {mmss(f.start_min * 60)}-{mmss(f.end_min * 60)}  {f.name} on "
                      f"{f.target} (expect {f.expect_rule}; planned: {f.outcome})")  # fmt: skip
        wall0 = time.monotonic()
        self.clock = ScenarioClock(start + timedelta(minutes=HISTORY_MIN), datetime.now(UTC),
                                   self.speed)  # fmt: skip
        for tick in fleet.ticks(SCENARIO_MIN, from_minute=HISTORY_MIN):
            due = (tick.minute - HISTORY_MIN) * 60 / self.speed
            while time.monotonic() - wall0 < due:
                self._observe(reader, producer, timeout=0.05)
            self._send(producer, tick.metrics, tick.logs)
            producer.poll(0)
        producer.flush(60)
        self._say(self._wall_now(), "faults over; waiting for every incident to resolve ...")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not self._settled():
            self._observe(reader, producer, timeout=0.2)
        reader.close()
        if not self.console:
            self.stop_workers()
        return self._report()

    def hold(self) -> None:
        """With the console: print where it is and keep the workers up until Ctrl-C."""
        if self.console_url:
            self.echo("\nthe second tenant: acme's Alertmanager reports its shop down ...")
            demo_tenants.acme_alert(f"http://127.0.0.1:{self.gateway_port}", self.acme_token)
            demo_tenants.wait_for_page(self.console_url, self.echo)
            self.echo(f"acme's public status page: {self.console_url}{demo_tenants.ACME_PAGE}")
            demo_console.hold(self.console_url, self.console_token, self.echo)

    def _send(self, p: Producer, metrics: list[MetricSample], logs: list[LogRecord]) -> None:
        records = [(self.catalog.name("metrics"), m.series_key(), encode(m)) for m in metrics]
        records += [(self.catalog.name("logs"), r.labels["service"], encode(r)) for r in logs]
        for topic, key, value in records:
            produce(p, topic, value, key.encode())  # waits for room when the queue is full
        p.poll(0)

    def _observe(self, reader: Consumer, producer: Producer, timeout: float) -> None:
        self._follow_agents_log()
        msg = reader.poll(timeout)
        if msg is None or msg.error():
            return
        topic, value = msg.topic(), msg.value() or b""
        if topic == self.catalog.name("alerts"):
            self._on_alert(decode(Alert, value))
        elif topic == self.catalog.name("incident-events"):
            self._on_ledger(decode(IncidentEvent, value))
        elif topic == self.catalog.name("receipts"):
            self.receipts.append(decode(DeliveryReceipt, value))
        else:
            self._on_page(decode(Notification, value))

    def _on_alert(self, alert: Alert) -> None:
        at = self.clock.of_event(alert.produced_at) if self.clock else None
        key = alert.rule + "/" + alert.fingerprint
        if alert.status == "firing":
            self.fired[key] = alert
            self._say(at, f"ALERT   {alert.severity:8} {alert.summary}")
            reason = self._untold.pop(alert.fingerprint, None)
            if reason is not None:
                self._say(at, f"INHIBIT {alert.summary}: {reason}; no incident, nobody paged")
        elif alert.status == "resolved":
            self.resolved.add(key)
            self._say(at, f"RESOLVE {alert.rule} {_where(alert.labels)}")

    def _follow_agents_log(self) -> None:
        """An alert the agents suppress opens no incident: only their log says so."""
        path = self.workdir / "agents.log"
        try:
            with path.open("rb") as f:
                f.seek(self._agents_log_at)
                chunk = f.read()
        except OSError:
            return
        done = chunk.rfind(b"\n") + 1  # complete lines only
        self._agents_log_at += done
        for line in chunk[:done].splitlines():
            if b'"alert_suppressed"' not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            fp, reason = str(rec.get("fingerprint", "")), str(rec.get("reason", ""))
            self.suppressed[fp] = reason
            alert = next((a for a in self.fired.values() if a.fingerprint == fp), None)
            if alert is None:
                # the agents decided before this reader got to the alert: said with it
                self._untold[fp] = reason
                continue
            self._say(self._wall_now(), f"INHIBIT {alert.summary}: {reason}; no incident, "
                                        "nobody paged")  # fmt: skip

    def _on_ledger(self, e: IncidentEvent) -> None:
        self.ledger.append(e)
        at = self.clock.of_wall(e.at) if self.clock else None
        if e.kind == "opened":
            self.titles[e.incident_id] = e.message
        elif e.kind == "inhibited" and e.details.get("active", True):
            title = self.titles.get(e.incident_id, e.incident_id)
            self._say(at, f"INHIBIT {title}: {e.message[:80]}; nobody is paged")
        elif e.kind == "escalated":
            self._say(at, f"ESCALATE {self.titles.get(e.incident_id, e.incident_id)}: "
                          f"{e.message}")  # fmt: skip

    def _on_page(self, note: Notification) -> None:
        self.pages.append(note)
        where = ""
        if note.channel == "pagerduty" and self.pagerduty_keyless:
            where = "  (printed by the notifier, not sent: no PAGERDUTY_ROUTING_KEYS)"
        self._say(self.clock.of_wall(note.at) if self.clock else None,
                  f"PAGE    {render(note)}{where}")  # fmt: skip
        # the responder acknowledges the first page of the fault planned to be acknowledged
        if note.kind == "trigger" and note.channel == "slack_dm" and any(
            f.outcome == "acknowledged" and f.expect_rule == note.labels.get("alertname")
            and about(f, note.labels) for f in self.faults
        ) and note.incident_id not in self.acked:  # fmt: skip
            self.acked.add(note.incident_id)
            answer = self._click("tocsin_ack", note.incident_id, user=note.target)
            self._say(self._wall_now(), f"        {note.target} clicks Acknowledge on "
                                        f"{note.incident_id}: {answer}")  # fmt: skip

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

    def _settled(self) -> bool:
        """Every alert resolved, every incident closed, every notification delivered."""
        opened = {e.incident_id for e in self.ledger if e.kind in ("opened", "reopened")}
        closed = {e.incident_id for e in self.ledger if e.kind == "resolved"}
        answered = {r.notification_id for r in self.receipts}
        return (self._all_resolved() and opened <= closed
                and all(n.notification_id in answered for n in self.pages))  # fmt: skip

    def _report(self) -> int:
        assert self.clock is not None
        ledger = _read_ledger(self.settings, self.catalog)
        receipts = [decode(DeliveryReceipt, v)
                    for v in read_topic(self.settings, self.catalog.name("receipts"))]  # fmt: skip
        alerts = {a.fingerprint: a for a in self.fired.values()}
        incs = incidents(ledger, alerts, self.pages)
        plan = sorted(FAULTS, key=lambda f: f.start_min)  # in the plan's own minutes
        calls = ""
        if self.slack is not None:
            posts = sum(len(msgs) for msgs in self.slack.messages.values())
            calls = f"{posts} messages in {len(self.slack.messages)} channels; " + ", ".join(
                f"{n} {m}" for m, n in sorted(Counter(self.slack.methods()).items())
            )
        seen = Observed(incs, list(self.fired.values()), self.suppressed, receipts)
        channels = Channels(self.slack is not None, self.pagerduty_keyless,
                            str(self.workdir / "notifier.log"), calls)  # fmt: skip
        problems = report(self.echo, self.clock, plan, seen, channels)
        missing = [f for f in self.faults if not any(a.rule == f.expect_rule and about(f, a.labels)
                   for a in self.fired.values())]  # fmt: skip
        if missing or problems or not self._all_resolved():
            self.echo("\nthe demo did NOT go as planned: "
                      + "; ".join([*(f"{f.name} not detected" for f in missing), *problems]
                                  or ["an alert did not resolve"]))  # fmt: skip
            return 1
        return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _d(d: timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s // 60}m" if s and s % 60 == 0 else f"{s}s"


def _where(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={labels[k]}" for k in ("service", "host") if k in labels)


def _read_ledger(settings: KafkaSettings, catalog: Catalog) -> list[IncidentEvent]:
    return [decode(IncidentEvent, v) for v in read_topic(settings, catalog.name("incident-events"))]
