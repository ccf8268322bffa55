"""An anomaly incident in the store: the API and the console show what was expected, how
rare the value is for its series, and the series' last hours (on SQLite and PostgreSQL,
filled by the real projector from the real broker)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from harness.incidents import produce
from processors.incidents.lifecycle import on_alert
from processors.incidents.state import GroupState, Route
from schemas import Alert
from schemas.config import Config
from streams.console.session import COOKIE
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.projector import Projector
from tests.integration.store.api.conftest import TOKENS, Served
from tests.integration.store.support import count

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RECENT = [400.0 + (i % 3) for i in range(21)] + [None, 180.0, 41.5]


def _anomaly_alert() -> Alert:
    return Alert.model_validate({
        "event_id": "anomaly-1", "fingerprint": "fp-anomaly", "status": "firing",
        "rule": "request_rate_anomaly", "source": "anomaly", "severity": "warning",
        "labels": {"service": "auth", "alertname": "request_rate_anomaly"},
        "summary": "auth request rate 41.5/s, expected 401/s", "value": 41.5,
        "starts_at": T0.isoformat(),
        "anomaly": {"score": 0.91, "expected": 401.0, "lower": 380.5, "upper": 421.5,
                    "rarity": "rarer than once in ten years for this series",
                    "recent": RECENT, "slot_s": 600,
                    "series": "rps{instance=a,service=auth}"},
    })  # fmt: skip


async def test_an_anomaly_incident_shows_its_expectation_rarity_and_last_hours(
    kafka_settings: KafkaSettings, running_projector: Projector, engine: Engine,
    served: Served, api_config: Config,
) -> None:  # fmt: skip
    st = GroupState(group_key="auth", route=Route(service="auth", policy="platform-default"))
    produce(kafka_settings, on_alert(st, _anomaly_alert(), T0, api_config).effects)
    deadline = time.monotonic() + 60
    while count(engine, tables.members) < 1:
        assert time.monotonic() < deadline, "timed out waiting for the incident's member"
        await asyncio.sleep(0.2)
    iid = st.incident_id
    async with served.client() as c:
        doc = (await c.get(f"/api/v1/incidents/{iid}")).json()
    (member,) = doc["members"]
    a = member["anomaly"]
    assert (a["expected"], a["lower"], a["upper"]) == (401.0, 380.5, 421.5)
    assert a["rarity"] == "rarer than once in ten years for this series"
    assert a["recent"] == RECENT and a["slot_s"] == 600
    assert a["series"] == "rps{instance=a,service=auth}"

    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        login = await c.post("/console/login", data={"token": TOKENS["viewer"]})
        assert login.status_code == 303, login.text
        c.cookies.set(COOKIE, login.cookies[COOKIE])
        page = await c.get(f"/console/incidents/{iid}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "expected 401, usual 380.5 to 421.5" in html
    assert "rarer than once in ten years for this series" in html
    assert "<code>rps{instance=a,service=auth}</code>" in html
    assert '<svg class="spark"' in html and "last 4 h" in html
    # one line of the last hours, broken where a slot had no sample
    spark = html[html.index('<svg class="spark"') : html.index("</svg>", html.index("spark"))]
    assert spark.count("<polyline") == 2 and '<rect class="band"' in spark
