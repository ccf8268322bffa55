"""Checkmk's notification contexts become alerts: states, notification types, bulks with
a bad context among good ones; and the plugin's own parsing of what Checkmk hands it."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from connectors.sources.checkmk import decode_checkmk_items, example_payload, fingerprint
from schemas import DecodeError

NOW = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
SERVICE = {"WHAT": "SERVICE", "NOTIFICATIONTYPE": "PROBLEM", "HOSTNAME": "db-1",
           "OMD_SITE": "prod", "SERVICEDESC": "Filesystem /var", "SERVICESTATE": "CRITICAL",
           "SERVICEOUTPUT": "97% used", "MICROTIME": "1767225600000000"}  # fmt: skip
HOST = {"WHAT": "HOST", "NOTIFICATIONTYPE": "PROBLEM", "HOSTNAME": "web-2", "OMD_SITE": "prod",
        "HOSTSTATE": "DOWN", "HOSTOUTPUT": "CRITICAL - 10.0.0.2: rta nan, lost 100%"}  # fmt: skip


def _one(ctx: dict[str, str]) -> Any:
    good, bad = decode_checkmk_items(orjson.dumps({"version": "1", "notifications": [ctx]}), NOW)
    assert not bad, bad
    return good[0][1]


def _error(ctx: object) -> str:
    good, bad = decode_checkmk_items(orjson.dumps({"version": "1", "notifications": [ctx]}), NOW)
    assert not good and bad
    return bad[0].message


@pytest.mark.parametrize(("ctx", "status", "severity"), [
    (HOST | {"HOSTSTATE": "DOWN"}, "firing", "critical"),
    (HOST | {"HOSTSTATE": "UNREACHABLE"}, "firing", "error"),
    (HOST | {"NOTIFICATIONTYPE": "RECOVERY", "HOSTSTATE": "UP", "LASTHOSTSTATE": "DOWN"},
     "resolved", "critical"),
    (SERVICE | {"SERVICESTATE": "CRITICAL"}, "firing", "critical"),
    (SERVICE | {"SERVICESTATE": "WARNING"}, "firing", "warning"),
    (SERVICE | {"SERVICESHORTSTATE": "WARN", "SERVICESTATE": ""}, "firing", "warning"),
    (SERVICE | {"SERVICESTATE": "UNKNOWN"}, "firing", "error"),
    (SERVICE | {"NOTIFICATIONTYPE": "RECOVERY", "SERVICESTATE": "OK"}, "resolved", "info"),
])  # fmt: skip
def test_states_map_to_status_and_severity(ctx: dict[str, str], status: str,
                                           severity: str) -> None:  # fmt: skip
    alert = _one(ctx)
    assert (alert.status, alert.severity, alert.source) == (status, severity, "checkmk")


@pytest.mark.parametrize("ntype", ["ACKNOWLEDGEMENT", "FLAPPINGSTART", "FLAPPINGSTOP",
                                   "FLAPPINGDISABLED", "DOWNTIMESTART", "DOWNTIMEEND",
                                   "DOWNTIMECANCELLED", "CUSTOM"])  # fmt: skip
def test_other_notification_types_carry_the_state_and_say_what_they_were(ntype: str) -> None:
    ctx = SERVICE | {"NOTIFICATIONTYPE": ntype, "NOTIFICATIONAUTHOR": "alice",
                     "NOTIFICATIONCOMMENT": "disk being replaced"}  # fmt: skip
    alert = _one(ctx)
    assert alert.status == "firing" and alert.fingerprint == _one(SERVICE).fingerprint
    assert alert.annotations["checkmk_notification"] == ntype
    assert alert.annotations["author"] == "alice"
    assert alert.annotations["comment"] == "disk being replaced"
    assert _one(ctx | {"SERVICESTATE": "OK"}).status == "resolved"


def test_a_service_alert_keeps_host_service_labels_and_output() -> None:
    alert = _one(SERVICE | {"HOSTLABEL_cmk/os_family": "linux", "SERVICELABEL_team": "storage",
                            "HOSTLABEL_host": "spoofed"})  # fmt: skip
    assert alert.fingerprint == fingerprint("prod", "db-1", "Filesystem /var")
    assert alert.labels["alertname"] == "Filesystem /var" and alert.labels["host"] == "db-1"
    assert alert.labels["cmk_os_family"] == "linux" and alert.labels["team"] == "storage"
    assert alert.summary == "db-1: Filesystem /var is CRITICAL - 97% used"
    assert alert.starts_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_host_alert_and_its_services_are_distinct_alerts() -> None:
    host = _one(HOST)
    assert host.labels["alertname"] == "host_state" and host.summary.startswith("web-2 is DOWN")
    assert host.fingerprint != _one(SERVICE | {"HOSTNAME": "web-2"}).fingerprint
    assert host.starts_at == NOW  # no MICROTIME: the gateway's time


@pytest.mark.parametrize(("ctx", "field"), [
    ({k: v for k, v in SERVICE.items() if k != "WHAT"}, "WHAT"),
    (SERVICE | {"WHAT": "CLUSTER"}, "WHAT"),
    (SERVICE | {"NOTIFICATIONTYPE": "ALERTHANDLER"}, "NOTIFICATIONTYPE"),
    (SERVICE | {"HOSTNAME": " "}, "HOSTNAME"),
    (SERVICE | {"SERVICEDESC": ""}, "SERVICEDESC"),
    (SERVICE | {"SERVICESTATE": "PURPLE"}, "SERVICESTATE"),
    ({k: v for k, v in HOST.items() if k != "HOSTSTATE"}, "HOSTSTATE"),
    (SERVICE | {"HOSTNAME": 7}, "HOSTNAME"),
])  # fmt: skip
def test_a_context_that_does_not_map_is_named_by_position_and_variable(
    ctx: dict[str, Any], field: str
) -> None:
    assert _error(ctx).startswith(f"notifications.0.{field}")


def test_a_bulk_stores_its_good_contexts_and_names_the_bad_one() -> None:
    body = orjson.dumps({"version": "1", "notifications": [SERVICE, "garbage", HOST]})
    good, bad = decode_checkmk_items(body, NOW)
    assert [p for p, _ in good] == [0, 2]
    assert bad[0].position == 1 and bad[0].message.startswith("notifications.1")


def test_a_body_that_is_no_request_at_all_is_refused_whole() -> None:
    too_many = orjson.dumps({"notifications": [{}] * 1001})
    for body, reason in ((b"{", "invalid_json"), (b'{"version": "2", "notifications": []}',
                         "unsupported_version"), (b'{"notifications": 3}', "validation"),
                         (too_many, "too_many_items")):  # fmt: skip
        with pytest.raises(DecodeError) as caught:
            decode_checkmk_items(body, NOW)
        assert caught.value.reason == reason, body[:40]


def test_the_documented_example_decodes() -> None:
    good, bad = decode_checkmk_items(example_payload(), NOW)
    assert len(good) == 2 and not bad


# -- the plugin's side ------------------------------------------------------------------


def _plugin() -> ModuleType:
    path = Path("connectors/checkmk/tocsin.py")
    spec = importlib.util.spec_from_file_location("tocsin_checkmk_plugin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_plugin_reads_checkmks_bulk_protocol() -> None:
    stdin = ["PARAMETER_1=https://gw/v1/checkmk\n", "PARAMETER_2=tok\n", "\n",
             "WHAT=SERVICE\n", "SERVICEOUTPUT=line one\x01line two\n", "\n",
             "WHAT=HOST\n", "HOSTNAME=h\n"]  # fmt: skip
    params, contexts = _plugin().read_bulk(stdin)
    assert params == {"PARAMETER_1": "https://gw/v1/checkmk", "PARAMETER_2": "tok"}
    assert contexts == [{"WHAT": "SERVICE", "SERVICEOUTPUT": "line one\nline two"},
                        {"WHAT": "HOST", "HOSTNAME": "h"}]  # fmt: skip


def test_the_plugin_sends_neither_its_token_nor_contact_details_nor_dead_macros() -> None:
    plugin = _plugin()
    params, [ctx] = plugin.from_environment({
        "NOTIFY_WHAT": "HOST", "NOTIFY_HOSTNAME": "h", "NOTIFY_PARAMETER_2": "secret",
        "NOTIFY_CONTACTEMAIL": "bob@example.com", "NOTIFY_HOSTLABEL_team": "web",
        "NOTIFY_NOTIFICATIONCOMMENT": "$HOSTACKCOMMENT$", "PATH": "/bin"})  # fmt: skip
    assert params == {"PARAMETER_2": "secret"}
    assert plugin.outgoing(ctx) == {"WHAT": "HOST", "HOSTNAME": "h", "HOSTLABEL_team": "web"}


def test_the_plugin_finds_its_token_as_parameter_variable_or_file(tmp_path: Path) -> None:
    plugin = _plugin()
    assert plugin.token_of({"PARAMETER_2": "p"}, {"TOCSIN_TOKEN": "e"}) == "p"
    assert plugin.token_of({}, {"TOCSIN_TOKEN": "e"}) == "e"
    (tmp_path / "token").write_text("f\n")
    assert plugin.token_of({}, {"TOCSIN_TOKEN_FILE": str(tmp_path / "token")}) == "f"
    assert plugin.token_of({}, {}) is None
