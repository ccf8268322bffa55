"""Hypothesis against the incident API of a real server over a store the real projector
filled from the real broker: hostile query strings, ids, actions, tenants and bodies
(arbitrary JSON, near-valid bodies with fields of the wrong type, size or syntax, raw
bytes). A caller's mistake is always a 4xx whose JSON names what is wrong; nothing
answers 5xx, and the server stays healthy."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.incidents import history, produce
from schemas.config import load_config
from streams.admin import create_topics, delete_prefixed
from streams.api.app import Api
from streams.api.server import application
from streams.catalog import Catalog
from streams.demo.fake_slack import serve
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.projector import Projector
from tests.integration.store.api.conftest import TOKENS, config_dir
from tests.integration.store.api.test_status_api import STATUS
from tests.integration.store.support import count

EXAMPLES = int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "120"))
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_IS_FINE)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
N = 6

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), st.text(max_size=40),
                    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1e400",
                                     "2026-13-45T99:99:99Z", "P99999999D", "PT-1H", "-PT1H",
                                     "PT0S", T0.isoformat(), "", "x" * 5000]))  # fmt: skip
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20)  # fmt: skip
query_values = st.one_of(st.text(max_size=60), st.sampled_from([
    "triggered", "P1", "-opened_at", "opened_at", "0", "-1", "201", "1" * 400, "9" * 30,
    "2026-03-02T09:00:00Z", "2026-03-02", "P7D", "PT1H", "not-a-cursor", "eyJ4IjoxfQ==",
    "service", "team", "csv", "json", "\x00", "%", "é" * 300]))  # fmt: skip
query_keys = st.one_of(st.sampled_from([
    "status", "priority", "service", "team", "since", "until", "q", "sort", "limit",
    "cursor", "group_by", "format", "tenant", "at"]), st.text(max_size=12))  # fmt: skip
queries = st.lists(st.tuples(query_keys, query_values), max_size=6)
ids = st.one_of(st.text(max_size=80), st.sampled_from(["inc-000000000000-0000000000",
                                                       "..", "%2e%2e", "a" * 5000]))  # fmt: skip
ACTIONS = ["ack", "resolve", "escalate", "snooze", "reassign", "note", "priority", "unsnooze"]


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Mostly near-valid: the right keys with values of any type; sometimes anything."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.binary(max_size=200))
    if shape == 1:
        return json.dumps(draw(json_values)).encode()
    fields = ["text", "assignee", "duration", "priority", "matchers", "starts_at", "ends_at",
              "comment", "weekly", "schedule", "user", "start", "end", "status", "message",
              "audiences", "title", "state", "components", "email", "url", "kind",
              "pages"]  # fmt: skip
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(fields), max_size=5, unique=True)):
        doc[key] = draw(json_values)
    if draw(st.booleans()):
        doc["matchers"] = [
            {k: draw(st.one_of(st.text(max_size=20), json_values))
             for k in draw(st.lists(st.sampled_from(["label", "op", "value", "x"]),
                                    max_size=4, unique=True))}
            for _ in range(draw(st.integers(0, 3)))
        ]  # fmt: skip
    if draw(st.booleans()):
        doc["weekly"] = {k: draw(json_values) for k in draw(st.lists(
            st.sampled_from(["days", "start", "duration", "timezone"]), max_size=4,
            unique=True))}  # fmt: skip
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def api(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, str]]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"af{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    tmp: Path = tmp_path_factory.mktemp("api-fuzz")
    engine = open_engine(StoreSettings(path=str(tmp / "store.sqlite3")))
    migrate(engine)
    projector, stop = Projector(s, engine), threading.Event()
    worker = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    worker.start()
    produce(s, list(history(N, T0)))
    deadline = datetime.now(UTC) + timedelta(seconds=90)
    while count(engine, tables.incidents) < N:
        assert datetime.now(UTC) < deadline, "the projector never filled the store"
        stop.wait(0.2)  # polling interval of a bounded wait
    # with status pages: their API and public pages take hostile input too
    app = application(Api(s, engine, load_config(config_dir(tmp))), {"default": STATUS})
    headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=60, headers=headers) as c:
            iid = c.get("/api/v1/incidents").json()["items"][0]["incident_id"]
            yield c, iid
            assert c.get("/healthz").status_code == 200
    finally:
        stop.set()
        worker.join(30)
        engine.dispose()
        delete_prefixed(make_admin(s), s.topic_prefix)


def _answered_well(resp: httpx.Response, what: object) -> None:
    assert resp.status_code < 500, f"{resp.status_code} {resp.text[:300]} for {what!r:.300}"
    if resp.status_code >= 400:
        doc = resp.json()
        assert isinstance(doc.get("error"), str) and doc["error"], (resp.text[:300], what)
    if resp.status_code == 400:
        # a 400 says where: a field, or the part of the request (query, body) it is in
        assert doc.get("field") or doc["error"].split(":")[0].split(".")[0] in (
            "query", "body"), (resp.text[:300], what)  # fmt: skip


def _path(part: str) -> str:
    return urllib.parse.quote(part, safe="")


@FUZZ
@given(query=queries, path=st.sampled_from([
    "/api/v1/incidents", "/api/v1/silences", "/api/v1/oncall", "/api/v1/reports",
    "/api/v1/reports/sla", "/api/v1/incidents/live", "/api/v1/status/pages/public/subscribers",
    "/status/default/public", "/status/default/public/index.json",
    "/status/default/public/feed.atom", "/status/default/staff"]))  # fmt: skip
def test_any_query_string_is_answered_or_refused_by_name(
    api: tuple[httpx.Client, str], query: list[tuple[str, str]], path: str
) -> None:
    c, _ = api
    if path.endswith("/live"):
        # the live feed streams until the client leaves: only its refusals are read whole
        with c.stream("GET", path, params=query, timeout=10) as resp:
            if resp.status_code >= 400:
                resp.read()
                _answered_well(resp, query)
            else:
                assert resp.status_code == 200
        return
    _answered_well(c.get(path, params=query), (path, query))


@FUZZ
@given(iid=ids, action=st.one_of(st.sampled_from(ACTIONS), st.text(max_size=20)), body=bodies(),
       real=st.booleans(), tenant=st.one_of(st.none(), st.text(max_size=30)))  # fmt: skip
def test_any_action_body_or_id_is_answered_or_refused_by_name(
    api: tuple[httpx.Client, str], iid: str, action: str, body: bytes, real: bool,
    tenant: str | None,
) -> None:  # fmt: skip
    c, known = api
    base = "/api/v1" if tenant is None else f"/api/v1/tenants/{_path(tenant)}"
    target = known if real else iid
    for method, path, content in (
        ("POST", f"{base}/incidents/{_path(target)}/{_path(action)}", body),
        ("GET", f"{base}/incidents/{_path(target)}", None),
        ("GET", f"{base}/incidents/{_path(target)}/postmortem", None),
        ("POST", f"{base}/silences", body),
        ("POST", f"{base}/oncall/overrides", body),
        ("GET", f"{base}/silences/{_path(iid)}", None),
        ("DELETE", f"{base}/silences/{_path(iid)}", None),
        ("POST", f"{base}/incidents/{_path(target)}/updates", body),
        ("PUT", f"{base}/status/components/{_path(action)}/override", body),
        ("PUT", f"{base}/status/components/shop/override", body),
        ("DELETE", f"{base}/status/components/{_path(action)}/override", None),
        ("POST", f"{base}/status/maintenance", body),
        ("DELETE", f"{base}/status/maintenance/{_path(iid)}", None),
        ("POST", f"{base}/status/pages/{_path(action)}/subscribers", body),
        ("POST", f"{base}/status/pages/public/subscribers", body),
        ("DELETE", f"{base}/status/pages/public/subscribers/{_path(iid)}", None),
    ):
        resp = c.request(method, path, content=content,
                         headers={"Content-Type": "application/json"})  # fmt: skip
        _answered_well(resp, (method, path, content))


@pytest.fixture(scope="module")
def console(api: tuple[httpx.Client, str]) -> tuple[httpx.Client, str]:
    """The same server's console, logged in as the admin: a session cookie and its CSRF
    token."""
    c, _ = api
    c.post("/console/login", data={"token": TOKENS["admin"]})
    page = c.get("/console/silences").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    made = c.post("/console/silences", data={"csrf": csrf, "matchers": "service=db"},
                  headers={"Authorization": ""}, follow_redirects=False)  # fmt: skip
    assert made.status_code == 303, "the session acts: a well-formed silence is created"
    return c, csrf


form_text = st.one_of(st.text(max_size=80), st.sampled_from([
    "service=db", "host=~'db-.*'", "host=~'('", "a=\"b", "'", "=x", "x=", "99999999999d",
    "1h", "0m", "-1h", "30d", "9" * 40 + "m", "\x00", "é" * 2000]))  # fmt: skip


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["matchers", "duration", "comment", "text",
                                               "tenant", "token", "csrf"]),
                              form_text, max_size=5),
       action=st.one_of(st.sampled_from(["ack", "resolve", "note", "escalate"]),
                        st.text(max_size=12)),
       query=queries)  # fmt: skip
def test_any_console_form_or_query_is_answered_or_refused(
    console: tuple[httpx.Client, str], api: tuple[httpx.Client, str],
    fields: dict[str, str], action: str, query: list[tuple[str, str]],
) -> None:  # fmt: skip
    c, csrf = console
    _, iid = api
    form = {"csrf": csrf, **fields}
    for method, path, data in (
        ("POST", "/console/silences", form),
        ("POST", f"/console/incidents/{iid}/{_path(action)}", form),
        ("POST", "/console/tenant", form),
        ("GET", "/console/", None),
        ("GET", "/console/reports", None),
        ("GET", f"/console/incidents/{_path(action)}", None),
    ):
        resp = c.request(method, path, data=data, params=None if data else query,
                         headers={"Authorization": ""}, follow_redirects=False)  # fmt: skip
        assert resp.status_code < 500, f"{resp.status_code} {resp.text[:300]} for {path} {data}"
