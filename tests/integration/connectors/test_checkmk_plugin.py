"""tocsin's Checkmk notification plugin run exactly as Checkmk runs it (an executable
from the notifications directory: NOTIFY_* variables for one notification, ``--bulk``
with the bulk on standard input) against the real gateway and broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from connectors.sources.checkmk import fingerprint
from schemas import Alert, AlertRef, Command, DeadLetter, Incident, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import TOKEN, make_gateway, read_values, serve

PLUGIN = Path("connectors/checkmk/tocsin.py").resolve()
CHECKMK_TOKEN = "checkmk-only-token"
# what Checkmk sets for a service problem (a subset of its context, as documented)
PROBLEM = {"NOTIFY_WHAT": "SERVICE", "NOTIFY_NOTIFICATIONTYPE": "PROBLEM",
           "NOTIFY_OMD_SITE": "prod", "NOTIFY_HOSTNAME": "db-1", "NOTIFY_HOSTALIAS": "db-1",
           "NOTIFY_HOSTADDRESS": "10.0.0.7", "NOTIFY_SERVICEDESC": "Filesystem /var",
           "NOTIFY_SERVICESTATE": "CRITICAL", "NOTIFY_SERVICESHORTSTATE": "CRIT",
           "NOTIFY_LASTSERVICESTATE": "OK", "NOTIFY_SERVICEOUTPUT": "97% used (29 of 30 GB)",
           "NOTIFY_SERVICEPROBLEMID": "812", "NOTIFY_HOSTLABEL_cmk/os_family": "linux",
           "NOTIFY_CONTACTNAME": "tocsin", "NOTIFY_CONTACTEMAIL": "oncall@example.com",
           "NOTIFY_NOTIFICATIONAUTHOR": "$SERVICEACKAUTHOR$"}  # fmt: skip


@pytest.fixture
def gateway(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[str]:
    gw = make_gateway(kafka_settings, source_tokens={"checkmk": frozenset({CHECKMK_TOKEN})})
    with serve(gw.app()) as url:
        yield url


def _run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # Checkmk runs the script by its path with the site's environment and nothing of ours
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMD_SITE": "prod"}
    return subprocess.run([str(PLUGIN), *args], env=base | env, input=stdin, text=True,
                          capture_output=True, timeout=120, check=False)  # fmt: skip


def _alerts(settings: KafkaSettings, topics: Catalog) -> list[Alert]:
    return [decode(Alert, v) for v in read_values(settings, topics.name("alerts"))]


def test_a_service_problem_and_its_recovery_reach_tocsin(
    gateway: str, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    params = {"NOTIFY_PARAMETER_1": f"{gateway}/v1/checkmk",
              "NOTIFY_PARAMETER_2": CHECKMK_TOKEN}  # fmt: skip
    done = _run(PROBLEM | params)
    assert done.returncode == 0, done.stderr
    recovery = PROBLEM | params | {"NOTIFY_NOTIFICATIONTYPE": "RECOVERY",
                                   "NOTIFY_SERVICESTATE": "OK", "NOTIFY_SERVICESHORTSTATE": "OK",
                                   "NOTIFY_LASTSERVICESTATE": "CRITICAL"}  # fmt: skip
    assert _run(recovery).returncode == 0
    problem, resolved = _alerts(kafka_settings, topics)
    assert problem.status == "firing" and problem.severity == "critical"
    assert problem.labels["host"] == "db-1" and problem.labels["cmk_os_family"] == "linux"
    assert problem.summary == "db-1: Filesystem /var is CRITICAL - 97% used (29 of 30 GB)"
    assert "author" not in problem.annotations  # an unexpanded macro is not sent
    assert resolved.status == "resolved" and resolved.fingerprint == problem.fingerprint
    assert resolved.severity == "critical"  # what it recovered from


def test_a_bulk_is_one_request_whose_bad_context_is_named_and_dead_lettered(
    gateway: str, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    def block(ctx: dict[str, str]) -> str:
        return "".join(f"{k.removeprefix('NOTIFY_')}={v}\n" for k, v in ctx.items())

    host_down = {"WHAT": "HOST", "NOTIFICATIONTYPE": "PROBLEM", "HOSTNAME": "web-2",
                 "HOSTSTATE": "DOWN", "HOSTOUTPUT": "no answer\x01from 10.0.0.2"}  # fmt: skip
    stdin = (f"PARAMETER_1={gateway}/v1/checkmk\nPARAMETER_2={TOKEN}\n\n"
             + block(PROBLEM) + "\n" + block(host_down) + "\n"
             + block(PROBLEM | {"NOTIFY_SERVICESTATE": "PURPLE",
                                "NOTIFY_SERVICESHORTSTATE": ""}))  # fmt: skip
    done = _run({}, "--bulk", stdin=stdin)
    assert done.returncode == 2, done.stdout + done.stderr  # permanent: do not resend
    assert "notifications.2.SERVICESTATE" in done.stderr
    alerts = _alerts(kafka_settings, topics)
    assert sorted(a.labels["host"] for a in alerts) == ["db-1", "web-2"]
    down = next(a for a in alerts if a.labels["host"] == "web-2")
    assert down.annotations["output"] == "no answer\nfrom 10.0.0.2"
    [letter] = [decode(DeadLetter, v) for v in read_values(kafka_settings,
                                                           topics.name("deadletter"))]  # fmt: skip
    assert letter.source_topic == "http:/v1/checkmk" and "notifications.2" in letter.error


def test_the_plugin_retries_a_gateway_that_is_not_ready_and_honours_retry_after(
    gateway: str, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    answered: list[int] = []

    async def flaky(request: web.Request) -> web.StreamResponse:
        if not answered:
            answered.append(503)
            return web.json_response({"error": "starting"}, status=503,
                                     headers={"Retry-After": "1"})  # fmt: skip
        async with httpx.AsyncClient() as client:
            forwarded = await client.post(f"{gateway}/v1/checkmk", content=await request.read(),
                                          headers={"Authorization":
                                                   request.headers["Authorization"]})  # fmt: skip
        answered.append(forwarded.status_code)
        return web.Response(status=forwarded.status_code, body=forwarded.content)

    app = web.Application()
    app.router.add_post("/v1/checkmk", flaky)
    with serve(app) as proxy:
        done = _run(PROBLEM | {"NOTIFY_PARAMETER_1": f"{proxy}/v1/checkmk",
                               "TOCSIN_TOKEN": CHECKMK_TOKEN})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert answered == [503, 200] and "attempt 1" in done.stderr
    assert [a.labels["host"] for a in _alerts(kafka_settings, topics)] == ["db-1"]


def test_an_unreachable_gateway_asks_checkmk_to_try_again_later() -> None:
    done = _run(PROBLEM | {"NOTIFY_PARAMETER_1": "http://127.0.0.1:9/v1/checkmk",
                           "NOTIFY_PARAMETER_2": "x"})  # fmt: skip
    assert done.returncode == 1 and "attempt 3" in done.stderr


def test_a_wrong_token_is_a_permanent_failure_and_writes_nothing(
    gateway: str, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    done = _run(PROBLEM | {"NOTIFY_PARAMETER_1": f"{gateway}/v1/checkmk",
                           "NOTIFY_PARAMETER_2": "not-a-token"})  # fmt: skip
    assert done.returncode == 2 and "401" in done.stderr
    assert read_values(kafka_settings, topics.name("alerts")) == []
    assert read_values(kafka_settings, topics.name("deadletter")) == []


def test_the_plugin_runs_on_a_bare_python(tmp_path: Path) -> None:
    """Checkmk runs it with the site's Python, where nothing of tocsin is installed."""
    done = subprocess.run([sys.executable, "-I", "-S", str(PLUGIN)], capture_output=True,
                          text=True, env={"NOTIFY_PARAMETER_1": "not a url"}, cwd=tmp_path,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "parameter 1" in done.stderr


def test_an_acknowledgement_in_checkmk_is_a_note_on_the_incident_that_holds_the_alert(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    now = datetime.now(UTC)
    fp = fingerprint("prod", "db-1", "Filesystem /var")
    ref = AlertRef(fingerprint=fp, rule="Filesystem /var", status="firing", severity="critical",
                   first_seen=now, last_seen=now)  # fmt: skip
    incident = Incident(incident_id="inc-disk-1", group_key="g", version=1, status="triggered",
                        title="disk", severity="critical", priority="P1", alerts=[ref],
                        opened_at=now)  # fmt: skip
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("incidents"), key=b"inc-disk-1", value=encode(incident))
    assert producer.flush(30) == 0
    gw = make_gateway(kafka_settings)
    with serve(gw.app()) as url:
        deadline = time.monotonic() + 60
        while gw.index is None or gw.index.incident_of(fp) is None:
            assert time.monotonic() < deadline, "the gateway never read the incident"
            time.sleep(0.2)
        ack = PROBLEM | {"NOTIFY_NOTIFICATIONTYPE": "ACKNOWLEDGEMENT",
                         "NOTIFY_NOTIFICATIONAUTHOR": "alice",
                         "NOTIFY_NOTIFICATIONCOMMENT": "replacing the disk",
                         "NOTIFY_MICROTIME": str(int(now.timestamp() * 1e6)),
                         "NOTIFY_PARAMETER_1": f"{url}/v1/checkmk",
                         "NOTIFY_PARAMETER_2": TOKEN}  # fmt: skip
        assert _run(ack).returncode == 0
        assert _run(ack).returncode == 0  # Checkmk resending it notes nothing twice
    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert len({c.event_id for c in commands}) == 1
    assert commands[0].action == "note" and commands[0].incident_id == "inc-disk-1"
    assert commands[0].actor == "alice"
    assert commands[0].text == "Checkmk: alice acknowledged: replacing the disk"
    [alert, _] = _alerts(kafka_settings, topics)
    assert (
        alert.status == "firing" and alert.annotations["checkmk_notification"] == "ACKNOWLEDGEMENT"
    )
