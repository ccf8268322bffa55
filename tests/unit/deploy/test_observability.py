"""The dashboard, the alert rules and docs/deploy.md name only metrics the workers
really export, and the rules are valid Prometheus rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.conftest import ROOT

OBS = ROOT / "observability"
METRIC = re.compile(r"\btocsin_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported() -> dict[str, str]:
    """Every tocsin_* family the workers register -> its type."""
    from streams.agents.metrics import AgentMetrics
    from streams.api.app import ApiMetrics
    from streams.expiry.worker import ExpiryMetrics
    from streams.gateway.app import GatewayMetrics
    from streams.notifier.worker import NotifierMetrics
    from streams.processor.metrics import ProcessorMetrics
    from streams.store.projector import ProjectorMetrics

    families: dict[str, str] = {}
    for metrics in (ProcessorMetrics(), AgentMetrics(), NotifierMetrics(), GatewayMetrics(),
                    ExpiryMetrics(), ProjectorMetrics(), ApiMetrics()):  # fmt: skip
        for family in metrics.registry.collect():
            name = family.name + ("_total" if family.type == "counter" else "")
            families[name] = family.type
    return families


def series_names(families: dict[str, str]) -> set[str]:
    names = set(families)
    for name, kind in families.items():
        if kind == "histogram":
            names |= {name + suffix for suffix in HISTOGRAM_SUFFIXES}
    return names


def dashboard() -> dict[str, Any]:
    return json.loads((OBS / "grafana/dashboards/tocsin.json").read_text())  # type: ignore[no-any-return]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OBS / "prometheus/alerts.yaml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_the_dashboard_queries_only_metrics_the_workers_export() -> None:
    known = series_names(exported())
    used = {m for expr in dashboard_exprs() for m in METRIC.findall(expr)}
    assert used - known == set()


def test_the_dashboard_shows_what_an_operator_of_tocsin_needs() -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    used = {m for expr in dashboard_exprs() for m in METRIC.findall(expr)}
    for needed in ("tocsin_consumer_lag", "tocsin_records_processed_total",
                   "tocsin_dead_letters_total", "tocsin_transitions_total",
                   "tocsin_incidents_open", "tocsin_notifications_sent_total",
                   "tocsin_notifications_failed_total", "tocsin_notifications_retried_total",
                   "tocsin_slack_api_seconds_bucket",
                   "tocsin_transaction_commit_seconds_bucket"):  # fmt: skip
        assert needed in used, needed
    for title in ("consumer lag per partition", "dead letters by reason", "slack api latency",
                  "transaction commit time"):  # fmt: skip
        assert title in titles, title
    panels = {p["title"]: p for p in dashboard()["panels"]}
    lag = panels["Consumer lag per partition"]["targets"][0]["expr"]
    assert "by (topic, partition)" in lag


def test_dashboard_is_well_formed_grafana_json() -> None:
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    assert board["uid"] and board["schemaVersion"] >= 36
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    # no two panels overlap
    cells = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps at {(x, y)}"
                cells.add((x, y))


def test_alert_rules_name_only_exported_metrics_and_cover_tocsins_health() -> None:
    known = series_names(exported())
    rules = alert_rules()
    for rule in rules:
        assert set(METRIC.findall(rule["expr"])) <= known, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    names = {r["alert"] for r in rules}
    assert {"TocsinConsumerLagGrowing", "TocsinDeadLettersRising", "TocsinNotifierFailing",
            "TocsinWorkerDown"} <= names  # fmt: skip


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed "
                    "(Debian: apt-get install prometheus)")  # fmt: skip
def test_promtool_accepts_the_alert_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(OBS / "prometheus/alerts.yaml")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_alert_unit_tests_fire_when_they_should(tmp_path: Path) -> None:
    """The rules fire on the situations they describe, and not on a healthy pipeline."""
    # promtool compares annotations too; their templates are checked by `check rules`
    doc = yaml.safe_load((OBS / "prometheus/alerts.yaml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump(doc))
    proc = 'job="tocsin-processor",topic="tocsin.metrics"'
    notif = 'job="tocsin-notifier"'
    series = [
        # lag climbing by 5000 a minute on partition 0
        (f'tocsin_consumer_lag{{{proc},partition="0"}}', "0+5000x40"),
        # the notifier keeps up: a constant small lag alerts nobody
        (f'tocsin_consumer_lag{{{notif},topic="tocsin.notifications",partition="0"}}', "50x40"),
        # 2 dead letters/s among 20 records/s: 10%
        (f'tocsin_dead_letters_total{{{proc},reason="validation"}}', "0+120x40"),
        (f"tocsin_records_processed_total{{{proc}}}", "0+1200x40"),
        # every Slack delivery fails; PagerDuty is healthy
        (f'tocsin_notifications_failed_total{{{notif},channel="slack",error="timeout"}}',
         "0+10x40"),
        (f'tocsin_notifications_sent_total{{{notif},channel="slack"}}', "5x40"),
        (f'tocsin_notifications_sent_total{{{notif},channel="pagerduty"}}', "0+10x40"),
        (f'tocsin_notifications_failed_total{{{notif},channel="pagerduty",error="timeout"}}',
         "0x40"),
        ('up{job="tocsin-notifier",instance="n:9400"}', "1x10 0x30"),
        # one window close raised at minute 25
        (f'tocsin_window_faults_total{{{proc},rule="rps"}}', "0x25 1x15"),
    ]  # fmt: skip

    def fires(at: str, alert: str, **labels: str) -> dict[str, Any]:
        expected = [{"exp_labels": labels}] if labels else []
        return {"eval_time": at, "alertname": alert, "exp_alerts": expected}

    expectations = [
        fires("30m", "TocsinConsumerLagGrowing", severity="warning", job="tocsin-processor",
              topic="tocsin.metrics"),
        fires("30m", "TocsinDeadLettersRising", severity="warning", topic="tocsin.metrics",
              reason="validation"),
        fires("30m", "TocsinNotifierFailing", severity="critical", channel="slack"),
        fires("30m", "TocsinEvaluationFaults", severity="warning"),
        fires("20m", "TocsinEvaluationFaults"),
        fires("30m", "TocsinWorkerDown", severity="critical", job="tocsin-notifier",
              instance="n:9400"),
        # silent before the faults have lasted their `for:`
        fires("5m", "TocsinNotifierFailing"),
        fires("5m", "TocsinConsumerLagGrowing"),
    ]  # fmt: skip
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": name, "values": values} for name, values in series],
            "alert_rule_test": expectations,
        }],
    }  # fmt: skip
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run(["promtool", "test", "rules", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_docs_list_exactly_the_exported_metrics() -> None:
    text = (ROOT / "docs/deploy.md").read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(tocsin_[a-z_]+)`", section, re.M))
    assert documented == set(exported())
