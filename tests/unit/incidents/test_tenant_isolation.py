"""Two tenants on one installation, without Kafka: the router's places, the batch step,
the suppressions broadcast. Identical labels never meet across tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.incidents.lifecycle import on_alert, on_command
from processors.incidents.state import GroupState, Route
from processors.incidents.tenants import Tenants
from schemas import Alert, Command, encode
from schemas.commands import Matcher, SilenceSpec
from schemas.config import load_installation
from schemas.incidents import Incident, IncidentEvent
from schemas.notifications import Notification
from streams.agents.broadcast import apply_record, suppression_key
from streams.agents.decide import Groups, Work, alert_bundle, work_value
from streams.agents.places import Places

INST = load_installation([Path("examples/config")])
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
LABELS = {"alertname": "cpu", "service": "shop", "host": "web-01"}


def alert(tenant: str, status: str = "firing", labels: dict[str, str] | None = None,
          fp: str = "web-01") -> Alert:  # fmt: skip
    return Alert(event_id=f"{tenant}-{fp}-{status}", tenant=tenant, fingerprint=fp,
                 status=status, rule="cpu", severity="critical", starts_at=T0,  # type: ignore[arg-type]
                 labels=labels or LABELS, ends_at=T0 if status == "resolved" else None)  # fmt: skip


def decide(tenants: Tenants, alerts: list[Alert], table: dict[bytes, bytes | None],
           now: datetime = T0) -> list[object]:  # fmt: skip
    places = Places(tenants, None, 6)
    groups = Groups(tenants, None, lambda: now)
    rows = []
    for a in alerts:
        for p in places.of(a.labels, a.tenant)[1]:
            rows.append((p.group_id, p.group_key, p.route, a))
    out = groups.decide([Work(b"k", alert_bundle(rows), 0, len(table))], table)
    for w in groups.written(out):
        table[w.key] = w.value
    return out.effects


def test_identical_labels_of_two_tenants_make_two_incidents_paged_to_their_own_people() -> None:
    tenants = Tenants(INST.tenants)
    places = Places(tenants, None, 6)
    (_, [mine]), (_, [theirs]) = places.of(LABELS), places.of(LABELS, "acme")
    assert mine.group_key.startswith("root|")  # the provider's keys are as they were
    assert theirs.group_key.startswith("acme/root|")
    assert mine.group_id != theirs.group_id
    effects = decide(tenants, [alert("default"), alert("acme")], {})
    incidents = {e.tenant: e for e in effects if isinstance(e, Incident)}
    assert set(incidents) == {"default", "acme"}
    assert incidents["default"].incident_id != incidents["acme"].incident_id
    assert incidents["acme"].team == "web" and incidents["default"].team == "platform"
    pages = [e for e in effects if isinstance(e, Notification)]
    acme = {e.target for e in pages if e.tenant == "acme"}
    provider = {e.target for e in pages if e.tenant == "default"}
    assert "#acme-web-alerts" in acme and "#platform-alerts" in provider
    assert not acme & provider
    people = {u.slack_id for u in INST.provider.users}
    assert not acme & people  # nobody of the provider is paged for acme's incident
    for e in effects:
        if isinstance(e, (Incident, IncidentEvent, Notification)):
            owner = "acme" if e.incident_id == incidents["acme"].incident_id else "default"
            assert e.tenant == owner


def test_a_silence_of_one_tenant_does_not_silence_another() -> None:
    tenants = Tenants(INST.tenants)
    spec = SilenceSpec(matchers=[Matcher(label="host", value="web-01")], starts_at=T0,
                       ends_at=T0 + timedelta(hours=1), author="erin")  # fmt: skip
    apply_record(tenants, suppression_key("acme", "sil", "s1"), spec.model_dump_json().encode())
    assert tenants.suppressions("acme").reason("web-01", LABELS, T0) is not None
    assert tenants.suppressions("default").reason("web-01", LABELS, T0) is None
    effects = decide(tenants, [alert("default"), alert("acme")], {})
    opened = {e.tenant for e in effects if isinstance(e, Incident)}
    assert opened == {"default"}
    # expiring a silence id from another tenant changes nothing for its owner
    apply_record(tenants, suppression_key("default", "sil", "s1"), None)
    assert tenants.suppressions("acme").reason("web-01", LABELS, T0) is not None
    apply_record(tenants, suppression_key("acme", "sil", "s1"), None)
    assert tenants.suppressions("acme").reason("web-01", LABELS, T0) is None


def test_an_inhibition_source_of_one_tenant_does_not_inhibit_another() -> None:
    acme = INST.tenants["acme"].model_copy(update={"inhibitions": INST.provider.inhibitions})
    tenants = Tenants({"default": INST.provider, "acme": acme})
    source = {"alertname": "source_absent", "host": "web-01"}
    apply_record(tenants, suppression_key("acme", "src", "absent"), orjson.dumps(source))
    assert tenants.suppressions("acme").reason("web-01", LABELS, T0) is not None
    assert tenants.suppressions("default").reason("web-01", LABELS, T0) is None


def test_a_command_of_another_tenant_is_refused_and_changes_nothing() -> None:
    cfg = INST.tenants["acme"]
    route = Route(team="web", policy="web-default")
    st = GroupState(group_key="acme/root|x", tenant="acme", route=route)
    opened = on_alert(st, alert("acme"), T0, cfg)
    assert st.incident_id is not None and opened.effects
    ack = Command(event_id="c1", tenant="default", actor="alice", at=T0, origin="slack",
                  action="ack", incident_id=st.incident_id)  # fmt: skip
    out = on_command(st, ack, T0, cfg)
    assert out.refused is not None and "'default' may not act" in out.refused
    assert out.effects == [] and st.status == "triggered"
    own = ack.model_copy(update={"event_id": "c2", "tenant": "acme", "actor": "erin"})
    assert on_command(st, own, T0, cfg).refused is None and st.status == "acknowledged"


def test_the_batch_step_hands_refused_commands_back_for_the_dead_letter_topic() -> None:
    tenants = Tenants(INST.tenants)
    table: dict[bytes, bytes | None] = {}
    effects = decide(tenants, [alert("acme")], table)
    inc = next(e for e in effects if isinstance(e, Incident))
    [key] = table
    cmd = Command(event_id="c1", tenant="default", actor="alice", at=T0, origin="api",
                  action="resolve", incident_id=inc.incident_id)  # fmt: skip
    groups = Groups(tenants, None, lambda: T0)
    raw = encode(cmd)
    out = groups.decide([Work(key, work_value("command", raw), 0, 99)], table)
    assert out.refused == [(raw, out.refused[0][1])] and "may not act" in out.refused[0][1]
    assert not out.effects


_HOSTS = ("web-01", "web-02")
_STEPS = st.lists(st.tuples(st.sampled_from(("default", "acme")), st.sampled_from(_HOSTS),
                            st.sampled_from(("firing", "resolved"))),
                  min_size=1, max_size=24)  # fmt: skip


def _run(steps: list[tuple[str, str, str]], tenants: set[str]) -> dict[str, list[bytes]]:
    """Each step one minute apart through one batch step; the effects by tenant."""
    both = Tenants(INST.tenants)
    places = Places(both, None, 6)
    clock = [T0]
    groups = Groups(both, None, lambda: clock[0])
    table: dict[bytes, bytes | None] = {}
    out: dict[str, list[bytes]] = {t: [] for t in tenants}
    for i, (tenant, host, status) in enumerate(steps):
        clock[0] = T0 + timedelta(minutes=i)
        if tenant not in tenants:
            continue
        a = alert(tenant, status, {**LABELS, "host": host}, fp=host)
        a = a.model_copy(update={"event_id": f"{tenant}-{i}"})
        rows = [(p.group_id, p.group_key, p.route, a) for p in places.of(a.labels, tenant)[1]]
        batch = groups.decide([Work(b"k", alert_bundle(rows), 0, i)], table)
        for w in groups.written(batch):
            table[w.key] = w.value
        for e in batch.effects:
            assert e.tenant == tenant
            out[tenant].append(encode(e))
    return out


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_a_tenant_decides_the_same_with_or_without_the_other(
    steps: list[tuple[str, str, str]],
) -> None:
    together = _run(steps, {"default", "acme"})
    assert together["default"] == _run(steps, {"default"})["default"]
    assert together["acme"] == _run(steps, {"acme"})["acme"]
