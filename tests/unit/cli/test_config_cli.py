from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from streams.cli.main import cli


def test_config_check_accepts_the_example_and_rejects_an_unknown_user(tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli, ["config", "check", "examples/config"])
    assert ok.exit_code == 0
    assert "4 users" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: [{id: t, members: [nobody]}]\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: teams[0] (t): unknown user 'nobody'" in result.output


def test_oncall_who_answers_across_the_dst_change() -> None:
    args = ["oncall", "who", "--schedule", "platform-primary", "--config", "examples/config"]
    before = CliRunner().invoke(cli, [*args, "--at", "2026-03-30T06:59:00Z"])
    after = CliRunner().invoke(cli, [*args, "--at", "2026-03-30T07:00:00Z"])
    assert "Bob Chen" in before.output  # 08:59 Berlin summer time
    assert "Alice Martin" in after.output  # 09:00: the weekly handoff


def test_a_duration_error_names_the_field_and_the_expected_format(tmp_path: Path) -> None:
    text = Path("examples/config/tocsin.yaml").read_text()
    for written in ("ten minutes", "5 min", "PT5X", "[5m]"):
        bad = tmp_path / "tocsin.yaml"
        bad.write_text(text.replace("group_wait: 30s", f"group_wait: {written}"))
        result = CliRunner().invoke(cli, ["config", "check", str(bad)])
        assert result.exit_code == 1, written
        first = result.output.splitlines()[0]
        assert first.startswith(f"{bad}: grouping.group_wait: "), first
        assert "10m" in first and "1h30m" in first, first


def test_a_rule_duration_error_names_the_expected_format(tmp_path: Path) -> None:
    text = Path("rules/default.yaml").read_text()
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("for: 5m}", "for: 5 minutes}", 1))
    result = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code != 0
    assert "rule cpu_saturation_critical field condition.for" in result.output, result.output
    assert "'5 minutes' is not a duration: write a duration like 30s, 10m or 1h30m" in (
        result.output
    )
