"""A real Zabbix 6.0 (Debian's zabbix-server-pgsql, zabbix-agent and zabbix-frontend-php,
`make peers`) with tocsin's media type imported through Zabbix's API: a trigger on the
agent's host fires, the media type posts to the gateway, the incident agents open an
incident; an acknowledgement in Zabbix arrives as an update; the recovery resolves it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.workers import kill9, start_agents
from schemas import Alert, Incident, IncidentEvent, decode
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import make_gateway, read_values, serve
from tests.integration.connectors.zabbix_stack import ZabbixStack, missing, zabbix_stack

MEDIA_TYPE = Path("connectors/zabbix/tocsin_media_type.yaml")
CONFIG = Path("examples/config/tocsin.yaml")
ZABBIX_TOKEN = "zabbix-only-token"
# two minutes on a quiet machine (most of it loading Zabbix's schema and waiting for
# its poller and escalator); several times that while other test files run beside it
pytestmark = [pytest.mark.skipif(missing() is not None, reason=str(missing())),
              pytest.mark.timeout(900)]  # fmt: skip


def _configure(zbx: ZabbixStack, gateway: str, flag: Path) -> None:
    """What an administrator does in the frontend, through the API.

    Everything a problem needs (the media type, the user, the action) is created before
    the host, its item and its trigger: the server evaluates actions from its
    configuration cache, synced every second, and a problem raised before a sync that
    holds the action would never be sent. The item's value comes from a sync that
    holds the host, hence the action too."""
    zbx.call("configuration.import", {
        "format": "yaml", "source": MEDIA_TYPE.read_text(),
        "rules": {"mediaTypes": {"createMissing": True, "updateExisting": True}}})  # fmt: skip
    media = zbx.call("mediatype.get", {"filter": {"name": "tocsin"}, "output": "extend"})[0]
    given = {"url": f"{gateway}/v1/zabbix", "token": ZABBIX_TOKEN,
             "zabbix_url": "http://zabbix.test"}  # fmt: skip
    params = [{"name": p["name"], "value": given.get(p["name"], p["value"])}
              for p in media["parameters"]]  # fmt: skip
    # a gateway answering slowly while other test files load the broker is tried again
    # rather than given up after the shipped three attempts
    zbx.call("mediatype.update", {"mediatypeid": media["mediatypeid"], "parameters": params,
                                  "maxattempts": "10", "attempt_interval": "5s"})  # fmt: skip
    # the default "Zabbix server" host polls an agent that is not there: keep it quiet
    for host in zbx.call("host.get", {"filter": {"host": "Zabbix server"}}):
        zbx.call("host.update", {"hostid": host["hostid"], "status": 1})
    group = zbx.call("hostgroup.create", {"name": "tocsin tests"})["groupids"][0]
    # tocsin as a Zabbix user of its own, allowed to see the host (Zabbix notifies only
    # users who may) and never the author of an update (whom Zabbix does not notify),
    # sharing a group with the operators (else {USER.FULLNAME} is "Inaccessible user")
    operators = zbx.call("usergroup.get", {"filter": {"name": "Zabbix administrators"}})
    users = zbx.call("usergroup.create", {"name": "tocsin", "rights": [
        {"permission": 2, "id": group}]})["usrgrpids"][0]  # fmt: skip
    user = zbx.call("user.create", {
        "username": "tocsin", "passwd": "Pager-only-Pa55", "roleid": "1",
        "usrgrps": [{"usrgrpid": users}, {"usrgrpid": operators[0]["usrgrpid"]}],
        "medias": [{"mediatypeid": media["mediatypeid"], "sendto": "tocsin", "active": 0,
                    "severity": 63, "period": "1-7,00:00-24:00"}]})["userids"][0]  # fmt: skip
    message = {"default_msg": 1, "mediatypeid": media["mediatypeid"]}
    zbx.call("action.create", {
        "name": "page tocsin", "eventsource": 0, "status": 0, "esc_period": "1h",
        "filter": {"evaltype": 0, "conditions": [
            {"conditiontype": 0, "operator": 0, "value": group}]},
        "operations": [{"operationtype": 0, "opmessage": message,
                        "opmessage_usr": [{"userid": user}]}],
        "recovery_operations": [{"operationtype": 11, "opmessage": {"default_msg": 1}}],
        "update_operations": [{"operationtype": 12, "opmessage": {"default_msg": 1}}]})  # fmt: skip
    host = zbx.call("host.create", {
        "host": "tocsin-agent", "groups": [{"groupid": group}],
        "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "",
                        "port": str(zbx.agent_port)}]})["hostids"][0]  # fmt: skip
    interface = zbx.call("hostinterface.get", {"hostids": host})[0]["interfaceid"]
    key = f"vfs.file.size[{flag}]"
    zbx.call("item.create", {"hostid": host, "interfaceid": interface, "name": "flag size",
                             "key_": key, "type": 0, "value_type": 3, "delay": "1s"})  # fmt: skip
    zbx.call("trigger.create", {
        "description": "Checkout flag raised on {HOST.NAME}", "priority": 5,
        "expression": f"last(/tocsin-agent/{key})>0", "manual_close": 1,
        "comments": "the test raised the flag", "url": "https://runbooks.test/flag",
        "tags": [{"tag": "service", "value": "checkout"},
                 {"tag": "cmk/odd name", "value": "x"}]})  # fmt: skip
    zbx.reload_config()


def _polled(zbx: ZabbixStack) -> bool:
    """The server has polled the agent for the flag (so it knows the action)."""
    items = zbx.call("item.get", {"filter": {"host": "tocsin-agent"},
                                  "output": ["lastclock"]})  # fmt: skip
    return bool(items) and all(int(i["lastclock"]) > 0 for i in items)


def _until(what: str, found: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = found()
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


def test_a_zabbix_trigger_opens_an_incident_and_its_recovery_resolves_it(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    agents_log = tmp_path / "agents.log"
    gw = make_gateway(kafka_settings, source_tokens={"zabbix": frozenset({ZABBIX_TOKEN})})
    agents = start_agents(kafka_settings, CONFIG, agents_log)
    try:
        with serve(gw.app()) as gateway, zabbix_stack() as zbx:

            def logs() -> str:
                """Which step stuck: the item's value, the problem, the media type's
                messages, the server's and the agents' logs."""
                items = zbx.call("item.get", {"output": ["key_", "lastclock", "lastvalue",
                                                         "state", "error"]})  # fmt: skip
                events = zbx.call("event.get", {"output": ["eventid", "clock", "value",
                                                           "name", "r_eventid"]})  # fmt: skip
                sent = zbx.call("alert.get", {"output": ["eventid", "status", "error",
                                                         "retries", "p_eventid"]})  # fmt: skip
                return (f"{zbx.logs()}\n--- agents\n{agents_log.read_text()[-2000:]}\n"
                        f"--- items (item.get)\n{items}\n--- events (event.get)\n{events}\n"
                        f"--- the media type's messages (alert.get)\n{sent}")  # fmt: skip

            def alerts() -> list[Alert]:
                return [a for a in (decode(Alert, v) for v in
                                    read_values(kafka_settings, topics.name("alerts")))
                        if a.source == "zabbix"]  # fmt: skip

            def incidents() -> list[Incident]:
                return [decode(Incident, v) for v in
                        read_values(kafka_settings, topics.name("incidents")) if v]  # fmt: skip

            flag = zbx.root / "flag"  # a directory the agent's user may read
            flag.write_text("")
            flag.chmod(0o644)
            _configure(zbx, gateway, flag)
            _until("the agent's first value of the flag", lambda: _polled(zbx), 180, logs)
            flag.write_text("raised\n")
            problem = _until("the problem on `alerts`", alerts, 180, logs)[0]
            assert problem.status == "firing" and problem.severity == "critical"
            assert problem.fingerprint.startswith("zabbix:")
            assert problem.labels["host"] == "tocsin-agent"
            assert problem.labels["service"] == "checkout"
            assert problem.labels["cmk_odd_name"] == "x"
            assert problem.summary == "Checkout flag raised on tocsin-agent"
            assert problem.runbook_url == "https://runbooks.test/flag"
            assert problem.annotations["zabbix_url"].startswith("http://zabbix.test/tr_events.php")
            event_id = problem.labels["zabbix_event_id"]

            def opened() -> list[Incident]:
                return [i for i in incidents()
                        if any(a.fingerprint == problem.fingerprint for a in i.alerts)]  # fmt: skip

            incident = _until("an incident for the problem", opened, 180, logs)[-1]
            assert incident.status == "triggered" and incident.team == "payments"

            zbx.call("event.acknowledge", {"eventids": event_id, "action": 6,
                                           "message": "on it"})  # fmt: skip

            def updates() -> list[Alert]:
                return [a for a in alerts() if a.annotations.get("zabbix_action") == "update"]

            update = _until("the acknowledgement as an update", updates, 180, logs)[0]
            assert update.fingerprint == problem.fingerprint and update.status == "firing"
            assert update.annotations["zabbix_update_message"] == "on it"
            assert "acknowledged" in update.annotations["zabbix_update_action"]
            assert update.annotations["zabbix_acknowledged"] == "Yes"

            def noted() -> list[IncidentEvent]:
                return [e for e in (decode(IncidentEvent, v) for v in read_values(
                        kafka_settings, topics.name("incident-events")))
                        if e.kind == "note" and e.incident_id == incident.incident_id]  # fmt: skip

            note = _until("the acknowledgement on the incident's timeline", noted, 180, logs)[0]
            admin = "Zabbix Administrator (Admin)"  # {USER.FULLNAME}
            assert note.message == f"Zabbix: {admin} acknowledged and commented: on it"
            assert note.actor == admin

            flag.write_text("")

            def resolved() -> list[Alert]:
                return [a for a in alerts() if a.status == "resolved"]

            recovery = _until("the recovery on `alerts`", resolved, 180, logs)[0]
            assert recovery.fingerprint == problem.fingerprint
            assert recovery.ends_at is not None and recovery.ends_at >= problem.starts_at

            def closed() -> list[Incident]:
                return [i for i in opened() if i.status == "resolved"]

            _until("the incident resolved", closed, 180, logs)
    finally:
        kill9(agents)
