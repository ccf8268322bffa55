"""The gateway as an Alertmanager (API v2) on the real broker: Prometheus-shaped alert
posts become Alert transitions, silences become commands and are listed, alerts of open
incidents are listed with the silences that mute them; Grafana's webhook is decoded with
its links; every route authenticates, names what is wrong and answers 429 on a flood."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from connectors.sources.alertmanager import fingerprint
from connectors.sources.grafana import example_payload
from schemas import Alert, Command, DeadLetter, Incident, decode, encode
from schemas.incidents import AlertRef
from streams.catalog import Catalog
from streams.gateway.limits import RateLimit
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, TOKEN, make_gateway, read_keyed, serve

NOW = datetime.now(UTC).replace(microsecond=0)


def _iso(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def _alert(name: str, ends: timedelta = timedelta(minutes=4), at: datetime | None = None,
           **labels: str) -> dict[str, object]:  # fmt: skip
    # dated when the test runs, not when the module was imported: a file can wait its
    # turn for minutes in a loaded suite, long enough for a 4-minute endsAt to pass
    at = at or datetime.now(UTC).replace(microsecond=0)
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": f"{name} fires"},
            "startsAt": _iso(at - timedelta(minutes=1)), "endsAt": _iso(at + ends),
            "generatorURL": "http://prometheus:9090/graph"}  # fmt: skip


def _wait(what: str, found: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_alerts_become_transitions_and_a_bad_one_is_named_and_dead_lettered(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = [_alert("DiskFull", at=now, instance="db-1"), {"labels": {"": "x"}},
            _alert("DiskFull", ends=-timedelta(seconds=5), at=now, instance="db-2")]  # fmt: skip
    with serve(make_gateway(kafka_settings).app()) as url:
        answer = httpx.post(f"{url}/api/v2/alerts", json=body, headers=AUTH)
        assert answer.status_code == 400
        assert answer.json().startswith("1 of 3 items rejected: item 1: alerts.1: ")
        assert "(the other alerts were accepted)" in answer.json()
        assert httpx.post(f"{url}/api/v2/alerts", json=body[:1], headers=AUTH).status_code == 200
    stored = read_keyed(kafka_settings, topics.name("alerts"))
    alerts = [decode(Alert, v) for _, v in stored]
    by_instance = {a.labels["instance"]: a for a in alerts}
    assert by_instance["db-1"].status == "firing"
    assert by_instance["db-1"].ends_at == now + timedelta(minutes=4), "the expiry travels"
    assert by_instance["db-2"].status == "resolved"
    keys = {fingerprint({"alertname": "DiskFull", "instance": i}) for i in ("db-1", "db-2")}
    assert {k.decode() for k, _ in stored} == keys
    same = [a for a in alerts if a.labels["instance"] == "db-1"]
    assert len({a.event_id for a in same}) == 1, "the same alert posted again: the same event"
    letters = [decode(DeadLetter, v) for v in
               (v for _, v in read_keyed(kafka_settings, topics.name("deadletter")))]  # fmt: skip
    assert len(letters) == 1 and letters[0].source_topic == "http:/api/v2/alerts"
    assert "alerts.1" in letters[0].error


def test_every_route_authenticates_by_bearer_or_basic_auth(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
    wrong = base64.b64encode(b"prometheus:nope").decode()
    with serve(make_gateway(kafka_settings).app()) as url:
        for method, path in (("POST", "/api/v2/alerts"), ("GET", "/api/v2/alerts"),
                             ("GET", "/api/v2/silences"), ("POST", "/api/v2/silences"),
                             ("DELETE", "/api/v2/silence/x"), ("GET", "/api/v2/status"),
                             ("POST", "/v1/grafana")):  # fmt: skip
            for headers in (
                {},
                {"Authorization": f"Basic {wrong}"},
                {"Authorization": "Basic %%%"},
                {"Authorization": "Bearer nope"},
            ):
                assert httpx.request(method, url + path, headers=headers).status_code == 401
        ok = httpx.post(f"{url}/api/v2/alerts", json=[_alert("A")],
                        headers={"Authorization": f"Basic {basic}"})  # fmt: skip
        assert ok.status_code == 200
    assert len(read_keyed(kafka_settings, topics.name("alerts"))) == 1
    assert read_keyed(kafka_settings, topics.name("deadletter")) == [], "refusals write nothing"


def test_silences_are_commands_listed_by_state_and_expired(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    silence = {"matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": False}],
               "startsAt": _iso(NOW), "endsAt": _iso(NOW + timedelta(hours=1)),
               "createdBy": "alice", "comment": "replacing the disk"}  # fmt: skip
    app = make_gateway(kafka_settings).app()
    with serve(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        made = c.post("/api/v2/silences", json=silence)
        assert made.status_code == 200, made.text
        sid = made.json()["silenceID"]
        listed = c.get("/api/v2/silences").json()
        assert [(s["id"], s["status"]["state"], s["createdBy"]) for s in listed] == [
            (sid, "active", "alice")
        ]
        assert listed[0]["matchers"] == [{"name": "alertname", "value": "DiskFull",
                                          "isRegex": False, "isEqual": True}]  # fmt: skip
        assert c.get("/api/v2/silences", params={"filter": 'alertname="DiskFull"'}).json()
        assert c.get("/api/v2/silences", params={"filter": 'alertname="Other"'}).json() == []
        assert c.get(f"/api/v2/silence/{sid}").json()["comment"] == "replacing the disk"
        assert c.delete(f"/api/v2/silence/{sid}").status_code == 200
        assert c.get(f"/api/v2/silence/{sid}").json()["status"]["state"] == "expired"
        assert c.get("/api/v2/silences", params={"expired": "false"}).json() == []
        assert c.delete("/api/v2/silence/nope").status_code == 404
        bad = c.post("/api/v2/silences", json={**silence, "endsAt": _iso(NOW - timedelta(hours=1))})
        assert bad.status_code == 400 and bad.json().startswith("PostableSilence.endsAt")
        unknown = c.post("/api/v2/silences", json={**silence, "id": "nope"})
        assert unknown.status_code == 404 and "PostableSilence.id" in unknown.json()
        assert c.get("/api/v2/silences", params={"filter": "a=~("}).status_code == 400
    commands = [decode(Command, v) for _, v in read_keyed(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.silence_id or c.event_id) for c in commands] == [
        ("silence", sid),
        ("expire_silence", sid),
    ]
    assert commands[0].silence is not None and commands[0].silence.author == "alice"
    with serve(make_gateway(kafka_settings).app()) as url:  # another replica reads them back
        again = _wait(
            "the silence read back from `commands`",
            lambda: httpx.get(f"{url}/api/v2/silences", headers=AUTH).json(),
        )
        assert [(s["id"], s["status"]["state"]) for s in again] == [(sid, "expired")]  # type: ignore[attr-defined]


def _incident(incident_id: str, status: str, *labelsets: dict[str, str]) -> Incident:
    refs = [AlertRef(fingerprint=fingerprint(ls), rule=ls["alertname"], status="firing",
                     severity="critical", labels=ls, first_seen=NOW, last_seen=NOW)
            for ls in labelsets]  # fmt: skip
    return Incident(incident_id=incident_id, group_key="g", version=1, status=status,  # type: ignore[arg-type]
                    title="disk trouble", severity="critical", priority="P1", team="storage",
                    labels={"alertname": "DiskFull"}, alerts=refs, opened_at=NOW)  # fmt: skip


def test_alerts_of_open_incidents_are_listed_with_the_silences_that_mute_them(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    producer = make_producer(kafka_settings)
    db1 = {"alertname": "DiskFull", "instance": "db-1"}
    db2 = {"alertname": "DiskFull", "instance": "db-2"}
    for inc in (_incident("inc-1", "triggered", db1, db2),
                _incident("inc-2", "resolved", {"alertname": "Old"})):  # fmt: skip
        producer.produce(topics.name("incidents"), key=inc.incident_id.encode(), value=encode(inc))
    assert producer.flush(10) == 0
    app = make_gateway(kafka_settings).app()
    with serve(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        listed = _wait("the incident's alerts", lambda: c.get("/api/v2/alerts").json())
        assert sorted(a["labels"]["instance"] for a in listed) == ["db-1", "db-2"]  # type: ignore[attr-defined]
        silence = {"matchers": [{"name": "instance", "value": "db-1", "isRegex": False}],
                   "startsAt": _iso(NOW), "endsAt": _iso(NOW + timedelta(hours=1)),
                   "createdBy": "alice", "comment": "x"}  # fmt: skip
        sid = c.post("/api/v2/silences", json=silence).json()["silenceID"]
        states = {a["labels"]["instance"]: (a["status"]["state"], a["status"]["silencedBy"])
                  for a in c.get("/api/v2/alerts").json()}  # fmt: skip
        assert states == {"db-1": ("suppressed", [sid]), "db-2": ("active", [])}
        unsilenced = c.get("/api/v2/alerts", params={"silenced": "false"}).json()
        assert [a["labels"]["instance"] for a in unsilenced] == ["db-2"]
        only = c.get("/api/v2/alerts", params={"filter": 'instance=~"db-2"'}).json()
        assert [a["fingerprint"] for a in only] == [fingerprint(db2)]
        assert only[0]["receivers"] == [{"name": "storage"}]
        groups = c.get("/api/v2/alerts/groups").json()
        assert len(groups) == 1 and len(groups[0]["alerts"]) == 2
        assert c.get("/api/v2/alerts", params={"active": "maybe"}).status_code == 400
        assert c.get("/alertmanager/api/v2/status").status_code == 404, "not Mimir, for Grafana"
        status = c.get("/api/v2/status").json()
        assert status["cluster"]["status"] == "ready" and status["versionInfo"]["version"]
        assert "receiver: tocsin" in status["config"]["original"]


def test_grafana_notifications_keep_their_links_and_a_bad_version_is_named(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    with serve(make_gateway(kafka_settings).app()) as url:
        for status in ("firing", "resolved"):
            answer = httpx.post(f"{url}/v1/grafana", content=example_payload(status),
                                headers=AUTH)  # fmt: skip
            assert answer.status_code == 200 and answer.json() == {"accepted": 1}
        wrong = httpx.post(f"{url}/v1/grafana", json={"version": "4", "alerts": []}, headers=AUTH)
        assert wrong.status_code == 400
        assert wrong.json()["error"].startswith('GrafanaWebhook.version: expected "1"')
        relayed = httpx.post(f"{url}/v1/alertmanager", content=example_payload(), headers=AUTH)
        assert relayed.status_code == 400 and "/v1/grafana" in relayed.json()["error"]
    alerts = [decode(Alert, v) for _, v in read_keyed(kafka_settings, topics.name("alerts"))]
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[0].annotations["dashboard_url"] == "https://grafana.example/d/abc123"
    assert alerts[0].runbook_url == "https://runbooks.example/1234"


def test_a_flood_from_one_credential_is_answered_429(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    gateway = make_gateway(kafka_settings, rate_limit=RateLimit(rate=1.0, burst=3))
    with serve(gateway.app()) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        codes = [c.post("/api/v2/alerts", json=[_alert("Flood")]).status_code for _ in range(8)]
        assert codes[:3] == [200] * 3 and 429 in codes[3:]
        refused = c.get("/api/v2/silences")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert orjson.loads(read_keyed(kafka_settings, topics.name("alerts"))[0][1])["rule"] == "Flood"
