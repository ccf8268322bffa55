"""What a person did in Zabbix or Checkmk becomes a note on the incident holding the
alert: the note's words, and the index that finds the incident by the alert."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from connectors.sources.checkmk import decode_checkmk_items
from connectors.sources.zabbix import decode_zabbix, example_payload
from schemas import AlertRef, Incident, encode
from streams.gateway.directory import IncidentIndex
from streams.gateway.monitoring import note_of
from streams.settings import KafkaSettings

NOW = datetime(2026, 1, 1, 1, tzinfo=UTC)


def _checkmk(**ctx: str) -> object:
    base = {"WHAT": "HOST", "HOSTNAME": "h", "HOSTSTATE": "DOWN"}
    body = orjson.dumps({"notifications": [base | ctx]})
    return decode_checkmk_items(body, NOW)[0][0][1]


def test_the_words_of_a_note() -> None:
    update = decode_zabbix(example_payload("update"), NOW)[1]
    user = "Zabbix Administrator (Admin)"
    assert note_of(update) == (user, f"Zabbix: {user} acknowledged: looking")
    assert note_of(decode_zabbix(example_payload("problem"), NOW)[1]) is None
    ack = _checkmk(NOTIFICATIONTYPE="ACKNOWLEDGEMENT", NOTIFICATIONAUTHOR="bob",
                   NOTIFICATIONCOMMENT="on it")  # fmt: skip
    assert note_of(ack) == ("bob", "Checkmk: bob acknowledged: on it")  # type: ignore[arg-type]
    downtime = _checkmk(NOTIFICATIONTYPE="DOWNTIMESTART")
    assert note_of(downtime) == ("Checkmk", "Checkmk: Checkmk started a downtime")  # type: ignore[arg-type]
    assert note_of(_checkmk(NOTIFICATIONTYPE="PROBLEM")) is None  # type: ignore[arg-type]


def test_the_index_finds_the_incident_that_last_listed_an_alert() -> None:
    index = IncidentIndex(KafkaSettings(), "incidents")

    def snapshot(incident_id: str, *fingerprints: str) -> bytes:
        refs = [AlertRef(fingerprint=fp, rule="r", status="firing", severity="error",
                         first_seen=NOW, last_seen=NOW) for fp in fingerprints]  # fmt: skip
        return encode(Incident(incident_id=incident_id, group_key="g", version=1,
                               status="triggered", title="t", severity="error",
                               priority="P3", alerts=refs, opened_at=NOW))  # fmt: skip

    index._apply(b"inc-1", snapshot("inc-1", "a", "b"))
    index._apply(b"inc-2", snapshot("inc-2", "b"))
    assert index.incident_of("a") == "inc-1" and index.incident_of("b") == "inc-2"
    index._apply(b"inc-1", snapshot("inc-1", "b"))  # "a" left inc-1
    assert index.incident_of("a") is None and index.incident_of("b") == "inc-1"
    index._apply(b"inc-3", snapshot("inc-3", "c"))
    index._apply(b"inc-3", None)  # compacted away
    assert index.incident_of("c") is None and index.incident_of("b") == "inc-1"
