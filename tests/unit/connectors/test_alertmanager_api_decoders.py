"""Prometheus' alerts (Alertmanager API v2), Alertmanager silences and matchers, and
Grafana's webhook, decoded as their senders mean them; what is wrong is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from connectors.sources.alertmanager import decode_alertmanager_items, fingerprint
from connectors.sources.alertmanager_silences import (
    decode_postable_silence,
    matchers_json,
    parse_filter,
)
from connectors.sources.grafana import decode_grafana_items, example_payload
from connectors.sources.prometheus_alerts import RESOLVE_TIMEOUT, decode_postable_alerts
from schemas import DecodeError
from schemas.commands import Matcher

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LABELS = {"alertname": "HighLatency", "instance": "web-1:9100", "severity": "critical"}


def _iso(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def _posted(**fields: object) -> dict[str, object]:
    return {"labels": LABELS, "annotations": {"summary": "p99 above 2s"},
            "startsAt": _iso(NOW - timedelta(minutes=3)),
            "endsAt": _iso(NOW + timedelta(minutes=4)),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x", **fields}  # fmt: skip


def test_a_firing_alert_from_prometheus_carries_its_expiry_and_alertmanagers_fingerprint() -> None:
    good, bad = decode_postable_alerts(orjson.dumps([_posted()]), NOW)
    assert not bad
    ((_, alert),) = good
    assert alert.status == "firing" and alert.ends_at == NOW + timedelta(minutes=4)
    assert alert.fingerprint == fingerprint(LABELS)
    assert alert.severity == "critical" and alert.summary == "p99 above 2s"
    assert alert.annotations["generator_url"].startswith("http://prometheus:9090")
    assert alert.source == "alertmanager" and alert.rule == "HighLatency"


def test_an_end_in_the_past_resolves_and_a_missing_end_expires_after_the_resolve_timeout() -> None:
    body = orjson.dumps([_posted(endsAt=_iso(NOW - timedelta(seconds=1))),
                         _posted(endsAt=None, startsAt=None),
                         _posted(endsAt="0001-01-01T00:00:00Z")])  # fmt: skip
    good, bad = decode_postable_alerts(body, NOW)
    assert not bad
    resolved, bare, zero = (a for _, a in good)
    assert resolved.status == "resolved" and resolved.ends_at == NOW - timedelta(seconds=1)
    assert bare.status == "firing" and bare.starts_at == NOW
    assert bare.ends_at == NOW + RESOLVE_TIMEOUT and zero.ends_at == NOW + RESOLVE_TIMEOUT


def test_the_same_labels_resent_keep_one_fingerprint_and_empty_labels_are_dropped() -> None:
    a = decode_postable_alerts(orjson.dumps([_posted()]), NOW)[0][0][1]
    b = decode_postable_alerts(orjson.dumps([_posted(labels={**LABELS, "empty": ""})]),
                               NOW + timedelta(minutes=1))[0][0][1]  # fmt: skip
    assert a.fingerprint == b.fingerprint and "empty" not in b.labels


def test_invalid_alerts_are_named_and_the_valid_ones_kept() -> None:
    body = orjson.dumps([_posted(), _posted(labels={"": "x"}), {"annotations": {}},
                         _posted(labels={"only": ""}),
                         _posted(endsAt=_iso(NOW - timedelta(hours=1)))])  # fmt: skip
    good, bad = decode_postable_alerts(body, NOW)
    assert [p for p, _ in good] == [0]
    messages = {e.position: e.message for e in bad}
    assert messages[1].startswith("alerts.1: Alert.labels")
    assert "alerts.2: PostableAlert.labels" in messages[2]
    assert messages[3] == "alerts.3.labels: at least one label pair with a value is required"
    assert messages[4] == "alerts.4.endsAt: must not be before startsAt"


@pytest.mark.parametrize("body", [b"{", b"3", b'{"labels":{}}'])
def test_a_body_that_is_not_an_array_of_alerts_is_refused_whole(body: bytes) -> None:
    with pytest.raises(DecodeError, match="PostableAlert"):
        decode_postable_alerts(body, NOW)


def test_items_that_are_not_alerts_are_named_by_position() -> None:
    good, bad = decode_postable_alerts(b'[1, {"labels": 2}]', NOW)
    assert not good and [e.message.split(":")[0] for e in bad] == ["alerts.0", "alerts.1"]


def _silence(**fields: object) -> bytes:
    return orjson.dumps({"matchers": [{"name": "alertname", "value": "Disk.*", "isRegex": True},
                                      {"name": "env", "value": "dev", "isRegex": False,
                                       "isEqual": False}],
                         "startsAt": _iso(NOW), "endsAt": _iso(NOW + timedelta(hours=2)),
                         "createdBy": "alice", "comment": "migration", **fields})  # fmt: skip


def test_a_silence_from_amtool_becomes_a_silence_spec_and_back() -> None:
    spec, replaces = decode_postable_silence(_silence(), NOW)
    assert replaces is None and spec.author == "alice" and spec.comment == "migration"
    assert [(m.label, m.op, m.value) for m in spec.matchers] == [("alertname", "=~", "Disk.*"),
                                                                ("env", "!=", "dev")]  # fmt: skip
    assert matchers_json(spec) == [
        {"name": "alertname", "value": "Disk.*", "isRegex": True, "isEqual": True},
        {"name": "env", "value": "dev", "isRegex": False, "isEqual": False},
    ]
    assert decode_postable_silence(_silence(id="abc"), NOW)[1] == "abc"


@pytest.mark.parametrize(("fields", "named"), [
    ({"endsAt": _iso(NOW - timedelta(hours=2))}, "PostableSilence.endsAt: start time must be"),
    ({"startsAt": _iso(NOW - timedelta(hours=3)), "endsAt": _iso(NOW - timedelta(hours=2))},
     "PostableSilence.endsAt: end time can't be in the past"),
    ({"matchers": []}, "PostableSilence.matchers"),
    ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]},
     "PostableSilence.matchers.0.value: invalid regular expression"),
    ({"createdBy": None}, "PostableSilence.createdBy"),
    ({"startsAt": "yesterday"}, "PostableSilence.startsAt"),
])  # fmt: skip
def test_an_invalid_silence_is_refused_naming_the_field(fields: dict[str, object],
                                                         named: str) -> None:  # fmt: skip
    with pytest.raises(DecodeError) as caught:
        decode_postable_silence(_silence(**fields), NOW)
    assert named in str(caught.value)


def test_filters_parse_as_prometheus_writes_them() -> None:
    assert parse_filter('alertname="Foo"') == Matcher(label="alertname", op="=", value="Foo")
    assert parse_filter("job=~node.*") == Matcher(label="job", op="=~", value="node.*")
    assert parse_filter('{env!="a \\"b\\""}') == Matcher(label="env", op="!=", value='a "b"')
    for broken in ("alertname", "=x", 'a="unterminated', "a=~("):
        with pytest.raises(ValueError, match="filter"):
            parse_filter(broken)


def _grafana(status: str, **alert: object) -> bytes:
    doc = orjson.loads(example_payload(status))
    doc["alerts"][0].update(alert)
    return orjson.dumps(doc)


def test_grafana_firing_and_resolved_keep_fingerprint_links_and_values() -> None:
    ((_, fired),) = decode_grafana_items(example_payload("firing"), NOW)[0]
    ((_, ended),) = decode_grafana_items(example_payload("resolved"), NOW)[0]
    assert fired.fingerprint == ended.fingerprint == "c6eadffa33fcdf37"
    assert fired.status == "firing" and fired.ends_at is None and fired.source == "grafana"
    assert ended.status == "resolved" and ended.ends_at == datetime(
        2026, 1, 1, 10, 1, 3, tzinfo=UTC
    )
    assert fired.annotations["dashboard_url"] == "https://grafana.example/d/abc123"
    assert fired.annotations["panel_url"].endswith("viewPanel=1")
    assert fired.annotations["silence_url"].startswith("https://grafana.example/alerting/silence")
    assert fired.annotations["values"] == "B=44.2394, C=1"
    assert fired.runbook_url == "https://runbooks.example/1234"
    assert fired.summary == "This alert was triggered for zone us-1"


def test_grafana_no_data_and_error_states_page_with_their_reason() -> None:
    nodata = _grafana("firing", labels={"alertname": "DatasourceNoData", "rulename": "CPU",
                                        "datasource_uid": "abc"},
                      annotations={}, fingerprint=None)  # fmt: skip
    error = _grafana(
        "firing",
        labels={"alertname": "DatasourceError", "rulename": "CPU"},
        annotations={"Error": "query timed out"},
        panelURL="",
        dashboardURL="",
    )
    ((_, a),) = decode_grafana_items(nodata, NOW)[0]
    ((_, b),) = decode_grafana_items(error, NOW)[0]
    assert a.rule == "DatasourceNoData" and a.severity == "warning"
    assert a.fingerprint == fingerprint({"alertname": "DatasourceNoData", "rulename": "CPU",
                                         "datasource_uid": "abc"})  # fmt: skip
    assert b.rule == "DatasourceError" and b.severity == "error"
    assert b.summary == "query timed out"
    assert b.runbook_url == "https://grafana.example/alerting/grafana/1afz29v7z/view"


def test_grafana_version_is_checked_and_alertmanagers_webhook_points_to_it() -> None:
    with pytest.raises(DecodeError, match='version: expected "1"'):
        decode_grafana_items(b'{"version":"4","alerts":[]}', NOW)
    with pytest.raises(DecodeError, match="post it to /v1/grafana"):
        decode_alertmanager_items(example_payload(), NOW)
    good, bad = decode_grafana_items(_grafana("firing", labels={"": "x"}), NOW)
    assert not good and bad[0].message.startswith("alerts.0: Alert.labels")
