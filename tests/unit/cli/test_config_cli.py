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
