"""Tenants at the gateway on the real broker: every record a request writes carries its
credential's tenant; naming another tenant, or an unknown one, is refused with nothing
written; one tenant over its quota is answered 429 while another's requests pass."""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from connectors.slack.signature import SignatureVerifier
from connectors.sources.grafana import example_payload as grafana_payload
from connectors.sources.zabbix import example_payload as zabbix_payload
from schemas import Alert, Command, Incident, MetricSample, decode, encode
from schemas.config import Config
from schemas.heartbeats import HeartbeatPing
from streams.catalog import Catalog
from streams.gateway.app import Gateway, GatewayMetrics
from streams.gateway.limits import TenantLimit
from streams.health import Health
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import (
    AUTH,
    SIGNING,
    STAMP,
    TOKEN,
    read_keyed,
    read_values,
    serve,
)

ACME, BETA = "acme-token-0123456789", "beta-token-0123456789"
BETA_ZABBIX = "beta-zabbix-0123456789"


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tenants() -> dict[str, Config]:
    hb = [{"name": "nightly-backup", "interval": "1d"}]
    return {
        # pat has the provider role (a provider token); sam is the provider's admin only
        "default": Config.model_validate({
            "users": [{"id": "pat", "name": "Pat", "slack_id": "U_PAT"},
                      {"id": "sam", "name": "Sam", "slack_id": "U_SAM"}],
            "teams": [{"id": "noc", "members": ["pat", "sam"]}],
            "api_tokens": [{"user": "pat", "role": "provider", "sha256": sha("pat-api")},
                           {"user": "sam", "role": "admin", "sha256": sha("sam-api")}]}),
        "acme": Config.model_validate({"tenant": "acme", "heartbeats": hb, "intake": {
            "tokens": [{"sha256": sha(ACME)}], "quota": {"requests_per_s": 5, "burst_s": 1},
            "slack_teams": ["TACME01"]},
            "users": [{"id": "erin", "name": "Erin", "slack_id": "U_ERIN"}],
            "teams": [{"id": "web", "members": ["erin"]}]}),
        "beta": Config.model_validate({"tenant": "beta", "intake": {
            "tokens": [{"sha256": sha(BETA)}, {"sha256": sha(BETA_ZABBIX), "only": "zabbix"}],
            "pagerduty_keys": [sha("beta-routing-key")],
            "slack_teams": ["TBETA01"]},
            "users": [{"id": "bob", "name": "Bob", "slack_id": "U_BOB"}],
            "teams": [{"id": "web", "members": ["bob"]}]}),
    }  # fmt: skip


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[httpx.Client]:
    gateway = Gateway(kafka_settings, {TOKEN}, SignatureVerifier(SIGNING), None, Health(),
                      GatewayMetrics(), tenants=tenants(),
                      tenant_limit=TenantLimit(requests=0, items=0))  # fmt: skip
    with serve(gateway.app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def am_alert(name: str) -> dict[str, object]:
    return {"status": "firing", "labels": {"alertname": name, "service": "shop"},
            "annotations": {"summary": name}, "startsAt": STAMP,
            "fingerprint": f"fp-{name}"}  # fmt: skip


def test_every_intake_writes_its_credentials_tenant(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    r = gw.post(
        "/v1/alertmanager",
        headers=bearer(ACME),
        json={"version": "4", "status": "firing", "alerts": [am_alert("AcmeDown")]},
    )
    assert r.status_code == 200, r.text
    r = gw.post("/api/v2/alerts", headers=bearer(BETA), json=[
        {"labels": {"alertname": "BetaDown"}, "startsAt": STAMP}])  # fmt: skip
    assert r.status_code == 200, r.text
    r = gw.post("/v2/enqueue", json={"routing_key": "beta-routing-key", "event_action": "trigger",
                                     "payload": {"summary": "disk", "source": "db-1",
                                                 "severity": "critical"}})  # fmt: skip
    assert r.status_code == 202, r.text
    r = gw.post(
        "/v1/alertmanager",
        headers=AUTH,
        json={"version": "4", "status": "firing", "alerts": [am_alert("OursDown")]},
    )
    assert r.status_code == 200, r.text
    # Grafana's contact point with basic auth (the password is acme's token)
    r = gw.post("/v1/grafana", content=grafana_payload("firing"), auth=("grafana", ACME))
    assert r.status_code == 200, r.text
    # beta's Zabbix token opens /v1/zabbix and nothing else
    r = gw.post("/v1/zabbix", content=zabbix_payload(), headers=bearer(BETA_ZABBIX))
    assert r.status_code == 200, r.text
    assert gw.post("/v1/alertmanager", headers=bearer(BETA_ZABBIX),
                   json={"version": "4", "alerts": []}).status_code == 401  # fmt: skip
    # a sample that names its own tenant is taken from the credential, never the body
    sample = {"name": "cpu", "value": 1.0, "time": STAMP, "labels": {"host": "h"}}
    assert gw.post("/v1/metrics", headers=bearer(ACME), json=[sample]).status_code == 202
    alerts = [decode(Alert, v) for v in read_values(kafka_settings, topics.name("alerts"))]
    by_source = {(a.source, a.tenant) for a in alerts}
    assert {("grafana", "acme"), ("zabbix", "beta")} <= by_source, by_source
    named = {a.summary if a.source == "pagerduty" else a.labels["alertname"]: a.tenant
             for a in alerts if a.source not in ("grafana", "zabbix")}  # fmt: skip
    assert named == {"AcmeDown": "acme", "BetaDown": "beta", "OursDown": "default",
                     "disk": "beta"}, named  # fmt: skip
    metrics = [decode(MetricSample, v) for v in read_values(kafka_settings,
                                                            topics.name("metrics"))]  # fmt: skip
    assert [m.tenant for m in metrics] == ["acme"]
    ping = gw.get("/v1/heartbeats/nightly-backup", headers=bearer(ACME))
    assert ping.status_code == 200, ping.text
    assert gw.get("/v1/heartbeats/nightly-backup", headers=bearer(BETA)).status_code == 404, (
        "beta's config lists no such heartbeat")  # fmt: skip
    keyed = read_keyed(kafka_settings, topics.name("heartbeats"))
    assert [(k, decode(HeartbeatPing, v).tenant) for k, v in keyed] == [
        (b"acme/nightly-backup", "acme")]  # fmt: skip


def test_a_credential_used_for_another_tenant_is_refused_and_nothing_is_written(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    body = {"version": "4", "status": "firing", "alerts": [am_alert("X")]}
    other = gw.post("/v1/alertmanager?tenant=beta", headers=bearer(ACME), json=body)
    assert other.status_code == 403
    assert "belongs to tenant 'acme', not 'beta'" in other.json()["error"]
    header = gw.post("/v1/alertmanager", json=body,
                     headers={**bearer(ACME), "X-Tocsin-Tenant": "beta"})  # fmt: skip
    assert header.status_code == 403
    unknown = gw.post("/v1/alertmanager?tenant=gamma", headers=bearer(ACME), json=body)
    assert unknown.status_code == 404 and "'gamma' is not a tenant" in unknown.json()["error"]
    named = {"name": "cpu", "value": 1.0, "time": STAMP, "tenant": "beta"}
    item = gw.post("/v1/metrics", headers=bearer(ACME), json=[named])
    assert item.status_code == 400
    assert "MetricSample.tenant: 'beta', but the credential belongs to tenant 'acme'" in item.text
    same = gw.post("/v1/alertmanager?tenant=acme", headers=bearer(ACME), json=body)
    assert same.status_code == 200, "naming its own tenant is fine"
    alerts = read_values(kafka_settings, topics.name("alerts"))
    assert [orjson.loads(v)["tenant"] for v in alerts] == ["acme"]
    assert read_values(kafka_settings, topics.name("metrics")) == []


def test_a_tenant_over_its_quota_gets_429_while_another_tenant_passes(
    gw: httpx.Client,
) -> None:
    sample = [{"name": "cpu", "value": 1.0, "time": STAMP}]
    answers = [gw.post("/v1/metrics", headers=bearer(ACME), json=sample) for _ in range(12)]
    codes = [r.status_code for r in answers]
    assert codes[:5] == [202] * 5 and 429 in codes[5:], codes
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status_code == 429)
    beta = [gw.post("/v1/metrics", headers=bearer(BETA), json=sample) for _ in range(12)]
    assert [r.status_code for r in beta] == [202] * 12, "acme's flood is not beta's"
    text = gw.get("/metrics").text
    assert 'tocsin_gateway_tenant_throttled_total{quota="requests",tenant="acme"}' in text
    assert 'tocsin_gateway_tenant_throttled_total{quota="requests",tenant="beta"}' not in text
    assert 'tocsin_gateway_tenant_items_total{tenant="beta"} 12.0' in text


def _signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(SIGNING).sign(stamp, body),
            "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


def _click(user: str, team: str, incident: str = "inc-acme-1") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "team_id": team},
               "team": {"id": team}, "actions": [{"action_id": "tocsin_ack",
                                                  "value": incident}]}  # fmt: skip
    return urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def _slash(text: str, user: str, team: str) -> bytes:
    return urllib.parse.urlencode({"text": text, "user_id": user, "team_id": team}).encode()


def test_a_slack_user_of_another_tenant_cannot_act_on_an_incident_nor_see_it(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    incident = Incident(incident_id="inc-acme-1", group_key="acme/g", version=1,
                        status="triggered", title="Shop down", severity="critical",
                        priority="P1", team="web", tenant="acme",
                        opened_at=datetime.now(UTC))  # fmt: skip
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("incidents"), key=b"inc-acme-1", value=encode(incident))
    assert producer.flush(10) == 0
    # bob is a member of beta's team "web": the same team name in another tenant
    theirs = _click("U_BOB", "TBETA01")
    refused = gw.post("/slack/interactions", content=theirs, headers=_signed(theirs))
    assert refused.status_code == 200 and refused.json()["response_type"] == "ephemeral"
    assert "not an incident of this Slack workspace's tenant (beta)" in refused.json()["text"]
    # erin's id in beta's workspace: beta's config does not know her
    stray = _click("U_ERIN", "TBETA01")
    assert "not authorised" in gw.post("/slack/interactions", content=stray,
                                       headers=_signed(stray)).json()["text"]  # fmt: skip
    listing = _slash("list", "U_BOB", "TBETA01")
    listed = gw.post("/slack/commands", content=listing, headers=_signed(listing)).json()
    assert listed["text"] == "No open incidents."
    who = _slash("who inc-acme-1", "U_BOB", "TBETA01")
    assert "No incident" in gw.post("/slack/commands", content=who,
                                    headers=_signed(who)).json()["text"]  # fmt: skip
    ours = _click("U_ERIN", "TACME01")
    ok = gw.post("/slack/interactions", content=ours, headers=_signed(ours))
    assert "accepted" in ok.json()["text"], ok.text
    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.actor, c.tenant) for c in commands] == [("ack", "erin", "acme")]


def _publish(kafka_settings: KafkaSettings, topics: Catalog, *incidents: Incident) -> None:
    producer = make_producer(kafka_settings)
    for inc in incidents:
        producer.produce(topics.name("incidents"), key=inc.incident_id.encode(),
                         value=encode(inc))  # fmt: skip
    assert producer.flush(10) == 0


def _incident(iid: str, tenant: str) -> Incident:
    return Incident(incident_id=iid, group_key=f"{tenant}/g", version=1, status="triggered",
                    title="Shop down", severity="critical", priority="P1", team="web",
                    tenant=tenant, opened_at=datetime.now(UTC))  # type: ignore[arg-type]  # fmt: skip


def test_the_providers_staff_act_on_any_tenants_incident_from_slack_a_tenants_user_cannot(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    _publish(kafka_settings, topics, _incident("inc-acme-1", "acme"),
             _incident("inc-beta-1", "beta"))  # fmt: skip

    def post(path: str, body: bytes) -> str:
        r = gw.post(path, content=body, headers=_signed(body))
        assert r.status_code == 200 and r.json()["response_type"] == "ephemeral", r.text
        text: str = r.json()["text"]
        return text

    # pat (provider role) from beta's workspace, on acme's incident, though no team of
    # acme lists pat; and from the provider's own workspace on beta's
    assert "accepted" in post("/slack/interactions", _click("U_PAT", "TBETA01"))
    assert "accepted" in post("/slack/commands", _slash("note on it inc-beta-1", "U_PAT",
                                                        "TPROVIDER"))  # fmt: skip
    assert "inc-acme-1: unassigned (team web" in post(
        "/slack/commands", _slash("who inc-acme-1", "U_PAT", "TPROVIDER")
    )
    # the provider's admin without the provider role stays in the provider's tenant
    assert "not an incident of this Slack workspace's tenant (default)" in post(
        "/slack/interactions", _click("U_SAM", "TPROVIDER")
    )
    # tenants' users still cannot act on another tenant's incident, from either workspace
    assert "not an incident of this Slack workspace's tenant (beta)" in post(
        "/slack/interactions", _click("U_BOB", "TBETA01")
    )
    assert "not authorised" in post("/slack/interactions", _click("U_BOB", "TACME01"))
    assert "not an incident of this Slack workspace's tenant (acme)" in post(
        "/slack/interactions", _click("U_ERIN", "TACME01", "inc-beta-1")
    )
    assert "No incident" in post("/slack/commands", _slash("who inc-acme-1", "U_BOB",
                                                           "TBETA01"))  # fmt: skip
    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.actor, c.tenant, c.incident_id) for c in commands] == [
        ("ack", "pat", "acme", "inc-acme-1"),
        ("note", "pat", "beta", "inc-beta-1"),
    ]


def test_alertmanager_api_silences_are_the_tenants_own(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    start = datetime.now(UTC)
    silence = {"matchers": [{"name": "service", "value": "shop", "isRegex": False}],
               "startsAt": start.isoformat(), "endsAt": start.replace(year=start.year + 1)
               .isoformat(), "createdBy": "erin", "comment": "maintenance"}  # fmt: skip
    made = gw.post("/api/v2/silences", headers=bearer(ACME), json=silence)
    assert made.status_code == 200, made.text
    sid = made.json()["silenceID"]
    assert [s["id"] for s in gw.get("/api/v2/silences", headers=bearer(ACME)).json()] == [sid]
    assert gw.get("/api/v2/silences", headers=bearer(BETA)).json() == []
    assert gw.get(f"/api/v2/silence/{sid}", headers=bearer(BETA)).status_code == 404
    assert gw.delete(f"/api/v2/silence/{sid}", headers=bearer(BETA)).status_code == 404
    assert gw.get(f"/api/v2/silence/{sid}", headers=bearer(ACME)).json()["status"] == {
        "state": "active"}  # fmt: skip
    commands = [decode(Command, v) for v in read_values(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.tenant) for c in commands] == [("silence", "acme")]
