"""Zabbix's media type: what it sends becomes one alert per message, and the script
itself (run under Node with Zabbix's HttpRequest and Zabbix objects) sends exactly that."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from connectors.sources.zabbix import MAX_EVENT, decode_zabbix, example_payload
from schemas import DecodeError

NOW = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
SCRIPT = Path("connectors/zabbix/tocsin.js")
MEDIA_TYPE = Path("connectors/zabbix/tocsin_media_type.yaml")


def _doc(kind: str = "problem") -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(example_payload(kind))  # type: ignore[arg-type]
    return doc


def _decode(doc: dict[str, Any]) -> Any:
    return decode_zabbix(orjson.dumps(doc), NOW)[1]


def test_a_problem_becomes_a_firing_alert_keyed_by_its_event_id() -> None:
    alert = _decode(_doc())
    assert alert.fingerprint == "zabbix:4242" and alert.status == "firing"
    assert alert.source == "zabbix" and alert.severity == "error"  # High
    assert alert.labels["alertname"] == "High CPU utilization"
    assert alert.labels["host"] == "web-01" and alert.labels["service"] == "checkout"
    assert alert.summary == "High CPU utilization on web-01"
    assert alert.runbook_url == "https://runbooks.example.com/cpu"
    assert alert.annotations["zabbix_url"] == (
        "https://zabbix.example.com/tr_events.php?triggerid=17&eventid=4242"
    )
    assert alert.annotations["opdata"] == "CPU 97%"
    assert alert.starts_at == datetime(2026, 1, 1, tzinfo=UTC) and alert.ends_at is None
    assert "zabbix_recovery_event_id" not in alert.annotations  # {EVENT.RECOVERY.ID} unexpanded


def test_an_update_is_a_firing_repeat_that_says_who_did_what() -> None:
    alert = _decode(_doc("update"))
    assert alert.fingerprint == "zabbix:4242" and alert.status == "firing"
    assert alert.annotations["zabbix_action"] == "update"
    assert alert.annotations["zabbix_update_action"] == "acknowledged"
    assert alert.annotations["zabbix_update_user"] == "Zabbix Administrator (Admin)"
    assert alert.annotations["zabbix_update_message"] == "looking"


def test_a_recovery_resolves_the_problem_at_the_recovery_time() -> None:
    alert = _decode(_doc("recovery"))
    assert alert.fingerprint == "zabbix:4242" and alert.status == "resolved"
    assert alert.ends_at == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    assert alert.annotations["zabbix_recovery_event_id"] == "4250"


@pytest.mark.parametrize(("number", "severity"), [
    ("0", "info"), ("1", "info"), ("2", "warning"), ("3", "error"), ("4", "error"),
    ("5", "critical")])  # fmt: skip
def test_zabbix_severity_numbers_map_to_tocsin_severities(number: str, severity: str) -> None:
    doc = _doc()
    doc["event"] |= {"nseverity": number, "severity": "renamed in this Zabbix"}
    assert _decode(doc).severity == severity


def test_an_instance_name_keeps_two_zabbix_servers_apart() -> None:
    doc = _doc()
    doc["instance"] = "eu-1"
    assert _decode(doc).fingerprint == "zabbix:eu-1:4242"


def test_tags_become_labels_but_never_override_the_intakes_own() -> None:
    doc = _doc()
    doc["event"]["tags"] = [{"tag": "host", "value": "spoofed"}, {"tag": "cmk/os family",
                            "value": "linux"}, {"tag": "9lives", "value": "x"}]  # fmt: skip
    labels = _decode(doc).labels
    assert labels["host"] == "web-01"
    assert labels["cmk_os_family"] == "linux" and labels["_9lives"] == "x"


def test_a_future_event_time_is_clamped_to_now() -> None:
    doc = _doc()
    doc["event"]["time"] = "2030-01-01T00:00:00Z"
    assert _decode(doc).starts_at == NOW


@pytest.mark.parametrize(("change", "field"), [
    ({"event": {"value": "1"}}, "event.id"),
    ({"event": {"id": "abc", "value": "1"}}, "event.id"),
    ({"event": {"id": "1", "value": "2"}}, "event.value"),
    ({"event": {"id": "1", "value": "1", "time": "2026-01-01T00:00:00"}}, "event.time"),
    ({"event": {"id": "1", "value": "1", "nseverity": "9"}}, "event.nseverity"),
    ({"instance": "two words"}, "instance"),
])  # fmt: skip
def test_invalid_fields_are_named(change: dict[str, Any], field: str) -> None:
    doc = _doc() | change
    with pytest.raises(DecodeError, match=rf"ZabbixEvent\.{field}"):
        decode_zabbix(orjson.dumps(doc), NOW)


def test_a_message_that_is_not_a_triggers_is_refused_as_unmapped() -> None:
    doc = _doc()
    doc["event"]["source"] = "3"
    with pytest.raises(DecodeError, match=r"event\.source") as caught:
        decode_zabbix(orjson.dumps(doc), NOW)
    assert caught.value.reason == "unmapped"


def test_a_problem_without_a_name_or_a_known_severity_is_refused() -> None:
    doc = _doc()
    doc["event"] |= {"name": "", "nseverity": "", "severity": "Custom"}
    doc["trigger"]["name"] = ""
    with pytest.raises(DecodeError, match=r"event\.name"):
        decode_zabbix(orjson.dumps(doc), NOW)
    doc["event"]["name"] = "x"
    with pytest.raises(DecodeError, match=r"event\.nseverity"):
        decode_zabbix(orjson.dumps(doc), NOW)


def test_an_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="over") as caught:
        decode_zabbix(b" " * (MAX_EVENT + 1), NOW)
    assert caught.value.reason == "too_large"


def test_the_import_file_carries_the_script_as_it_is() -> None:
    media = yaml.safe_load(MEDIA_TYPE.read_text())["zabbix_export"]["media_types"][0]
    assert media["script"] == SCRIPT.read_text()
    names = {p["name"] for p in media["parameters"]}
    assert {"url", "token", "event_id", "event_value", "event_update_status",
            "event_nseverity", "event_tags", "host_name", "trigger_name"} <= names  # fmt: skip


# -- the script under a JavaScript engine ---------------------------------------------

NODE = shutil.which("node")
HARNESS = """
const fs = require('fs');
const posted = [];
let status = Number(process.env.STATUS);
global.HttpRequest = function () {
    this.headers = [];
    this.addHeader = (h) => this.headers.push(h);
    this.setProxy = (p) => { this.proxy = p; };
    this.post = (url, body) => { posted.push({url, body: JSON.parse(body), headers: this.headers});
                                 return '{"accepted": 1}'; };
    this.getStatus = () => status;
};
global.Zabbix = {log: () => {}};
const run = new Function('value', fs.readFileSync(process.argv[1], 'utf8'));
let result, error;
try { result = run(fs.readFileSync(0, 'utf8')); } catch (e) { error = String(e); }
process.stdout.write(JSON.stringify({result: result ?? null, error: error ?? null, posted}));
"""


def _run_script(params: dict[str, str], status: int = 200) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run([NODE, "-e", HARNESS, "--", str(SCRIPT)], env={"STATUS": str(status),
                          "TZ": "Europe/Berlin"}, input=json.dumps(params).encode(),
                          capture_output=True, check=True, timeout=30)  # fmt: skip
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _params(**changes: str) -> dict[str, str]:
    media = yaml.safe_load(MEDIA_TYPE.read_text())["zabbix_export"]["media_types"][0]
    params: dict[str, str] = {p["name"]: p["value"] for p in media["parameters"]}
    # what Zabbix expands for a problem; the recovery and update macros stay unexpanded
    params |= {"url": "http://gw/v1/zabbix", "token": "tok", "event_id": "77",
               "event_value": "1", "event_update_status": "0", "event_source": "0",
               "event_name": "Disk full", "event_severity": "Disaster",
               "event_nseverity": "5", "event_date": "2026.07.01", "event_time": "14:00:05",
               "event_tags": '[{"tag":"service","value":"db"}]', "host_name": "db-1",
               "host_host": "db-1", "trigger_id": "9", "trigger_name": "Disk full"}  # fmt: skip
    return params | changes


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_script_posts_what_the_gateway_maps() -> None:
    out = _run_script(_params())
    assert out["error"] is None and out["result"] == "OK"
    [sent] = out["posted"]
    assert sent["url"] == "http://gw/v1/zabbix"
    assert "Authorization: Bearer tok" in sent["headers"]
    body = sent["body"]
    # 14:00:05 in Berlin's summer time is 12:00:05 UTC: the server's zone is the script's
    assert body["event"]["time"] == "2026-07-01T12:00:05.000Z"
    assert body["event"]["recovery_id"] == "" and body["event"]["update_action"] == ""
    assert body["event"]["tags"] == [{"tag": "service", "value": "db"}]
    alert = decode_zabbix(orjson.dumps(body), datetime(2026, 7, 2, tzinfo=UTC))[1]
    assert alert.fingerprint == "zabbix:77" and alert.severity == "critical"
    assert alert.labels["service"] == "db" and alert.summary == "Disk full on db-1"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_script_throws_on_a_refusal_so_zabbix_logs_and_retries_it() -> None:
    out = _run_script(_params(), status=400)
    assert out["error"] is not None and "tocsin answered 400" in out["error"]
    out = _run_script(_params(token="{ALERT.SENDTO}"))
    assert out["error"] is not None and "token" in out["error"] and not out["posted"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_unparseable_tags_are_sent_as_none_rather_than_failing_the_message() -> None:
    out = _run_script(_params(event_tags="not json"))
    assert out["error"] is None and out["posted"][0]["body"]["event"]["tags"] == []
