"""A summary placeholder the alert cannot fill is refused when the rules load, not
discovered as a blank in a page."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas import ConfigError
from schemas.rules import load_rule_files
from streams.cli.main import cli

RULE = """
rules:
  - name: memory_high
    signal: {kind: metric, metric: memory_percent}
    window: {size: 30s}
    condition: {op: ">", threshold: 90, for: 5m}
    group_by: [service, host]
    labels: {team: platform}
    summary: "%s"
"""


def _load(tmp_path: Path, summary: str, extra: str = "") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE % summary + extra)
    return path


@pytest.mark.parametrize(
    "summary",
    [
        "Memory {value:.1f}% on {host} of {service} (> {threshold:.0f}%)",
        "{alertname} for {team}: {labels} ({rule}, {op})",
        "literal {{braces}} stay literal",
    ],
)
def test_labels_of_the_group_and_the_known_fields_are_accepted(
    tmp_path: Path, summary: str
) -> None:
    (rule,) = load_rule_files([_load(tmp_path, summary)]).rules
    assert rule.summary == summary


def test_a_placeholder_that_is_no_label_of_the_group_names_file_rule_and_placeholder(
    tmp_path: Path,
) -> None:
    path = _load(tmp_path, "Memory {value:.1f}% on {hots}")
    with pytest.raises(ConfigError) as err:
        load_rule_files([path])
    assert str(err.value) == (
        f"{path}: rule memory_high: summary: placeholder {{hots}} is not a label of the "
        "rule's group (alertname, host, service, team) nor one of value, threshold, op, "
        "rule, labels"
    )


def test_a_label_the_signal_has_but_the_group_drops_is_refused(tmp_path: Path) -> None:
    # dc is on every sample, but the alert only carries the group's labels
    with pytest.raises(ConfigError, match=r"placeholder \{dc\} is not a label"):
        load_rule_files([_load(tmp_path, "Memory high in {dc}")])


def test_anomaly_fields_belong_to_anomaly_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\{expected\} is filled for anomaly rules only"):
        load_rule_files([_load(tmp_path, "{value} expected {expected:.0f}")])


def test_a_broken_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rule memory_high: summary: not a valid template"):
        load_rule_files([_load(tmp_path, "Memory {value on {host}")])


def test_a_runbook_url_may_only_name_labels(tmp_path: Path) -> None:
    path = _load(tmp_path, "ok", '    runbook_url: "https://rb/{host}?v={value}"\n')
    with pytest.raises(ConfigError, match=r"runbook_url: placeholder \{value\}"):
        load_rule_files([path])


def test_rules_check_fails_naming_the_placeholder(tmp_path: Path) -> None:
    text = Path("rules/default.yaml").read_text()
    bad = tmp_path / "pack.yaml"
    bad.write_text(text.replace("Memory {value:.1f}% on {host}", "Memory {value:.1f}% on {hots}"))
    result = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code != 0
    assert f"{bad}: rule memory_high: summary: placeholder {{hots}}" in result.output
    ok = CliRunner().invoke(cli, ["rules", "check", "rules/default.yaml"])
    assert ok.exit_code == 0, ok.output
