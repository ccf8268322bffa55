"""What a PagerDuty Events v2 event becomes: labels to route and group by, annotations
to read, each bounded and string-valued."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from connectors.sources.pagerduty import DETAIL_CHARS, DETAILS, decode_pagerduty

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(action: str = "trigger", key: str = "db-1/disk", **payload: object) -> bytes:
    body: dict[str, object] = {"routing_key": "R1", "event_action": action, "dedup_key": key}
    if payload:
        body["payload"] = {"summary": "disk full", "source": "db-1.example.net",
                           "severity": "error", **payload}  # fmt: skip
    return orjson.dumps(body)


def test_payload_fields_become_labels_and_the_dedup_key_names_the_alert() -> None:
    _, alert = decode_pagerduty(
        event(component="postgres", group="storage", **{"class": "disk"}), NOW
    )
    assert alert.labels == {
        "alertname": "db-1/disk", "dedup_key": "db-1/disk", "source": "db-1.example.net",
        "severity": "error", "component": "postgres", "group": "storage", "class": "disk",
    }  # fmt: skip
    assert alert.rule == "disk" and alert.summary == "disk full"


def test_a_resolve_without_payload_keeps_the_labels_that_choose_its_group() -> None:
    _, trigger = decode_pagerduty(event(component="postgres"), NOW)
    _, resolve = decode_pagerduty(event("resolve"), NOW)
    _, ack = decode_pagerduty(event("acknowledge"), NOW)
    for later in (resolve, ack):
        assert later.labels == {"alertname": "db-1/disk", "dedup_key": "db-1/disk"}
        assert {k: trigger.labels[k] for k in later.labels} == later.labels


def test_custom_details_are_flattened_to_string_annotations() -> None:
    details = {"free": 0, "disk": {"mount": "/var", "ok": False}, "ips": ["10.0.0.1"],
               "note": None, "ratio": 0.5}  # fmt: skip
    _, alert = decode_pagerduty(event(custom_details=details), NOW)
    notes = alert.annotations
    assert notes["details.free"] == "0" and notes["details.ratio"] == "0.5"
    assert notes["details.disk.mount"] == "/var" and notes["details.disk.ok"] == "false"
    assert notes["details.ips.0"] == "10.0.0.1" and notes["details.note"] == "null"
    assert orjson.loads(notes["custom_details"]) == details, "the whole object is kept too"
    _, text = decode_pagerduty(event(custom_details="plain text details"), NOW)
    assert text.annotations["details"] == "plain text details"


def test_custom_details_are_bounded_in_number_length_and_depth() -> None:
    many = {f"k{i}": "v" * 5000 for i in range(1000)}
    _, alert = decode_pagerduty(event(custom_details=many), NOW)
    flat = {k: v for k, v in alert.annotations.items() if k.startswith("details.")}
    assert len(flat) == DETAILS and all(len(v) == DETAIL_CHARS for v in flat.values())
    assert len(alert.annotations["custom_details"]) == 8000
    deep: object = "bottom"
    for _ in range(40):
        deep = {"d": deep}
    _, nested = decode_pagerduty(event(custom_details=deep), NOW)
    (key,) = [k for k in nested.annotations if k.startswith("details.")]
    assert key == "details" + ".d" * 8, "depth is cut, the rest shown as JSON"
    assert "bottom" in nested.annotations[key]


def test_an_integer_beyond_64_bits_is_shown_not_a_crash() -> None:
    big = b'{"routing_key":"R","event_action":"trigger","dedup_key":"k","payload":{"summary":'
    big += b'"s","source":"x","severity":"info","custom_details":{"n":' + b"9" * 40 + b"}}}"
    _, alert = decode_pagerduty(big, NOW)
    assert alert.annotations["details.n"] == "9" * 40
    assert alert.annotations["custom_details"] == '{"n": ' + "9" * 40 + "}"
