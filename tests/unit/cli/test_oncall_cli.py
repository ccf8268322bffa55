from __future__ import annotations

import re

from click.testing import CliRunner

from streams.cli.main import cli

ARGS = ["oncall", "who", "--config", "examples/config"]


def test_who_shows_the_schedules_own_wall_clock_to_the_second() -> None:
    result = CliRunner().invoke(
        cli, [*ARGS, "--schedule", "platform-primary", "--at", "2026-03-30T06:59:00.123456Z"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # 06:59 UTC is 08:59 in Berlin summer time; no microseconds, no UTC offset noise
    assert lines[0] == ("platform-primary (Europe/Berlin) at Mon 2026-03-30 08:59:00 CEST: "
                        "Bob Chen (bob)")  # fmt: skip
    # the weekly handoff is written as 09:00 in the schedule, and reads as 09:00
    assert lines[1] == "  from Mon 2026-03-30 09:00 CEST: Alice Martin (alice)"
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", result.output)


def test_who_in_new_york_reads_new_york_time() -> None:
    result = CliRunner().invoke(
        cli, [*ARGS, "--schedule", "payments-primary", "--at", "2026-12-05T12:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    assert "at Sat 2026-12-05 07:00:00 EST:" in result.output
    assert "  from Sat 2026-12-05 08:00 EST: " in result.output


def test_who_names_the_expected_time_format() -> None:
    result = CliRunner().invoke(cli, [*ARGS, "--schedule", "platform-primary", "--at", "monday"])
    assert result.exit_code == 2
    assert "'monday' is not an ISO time such as 2026-03-30T09:00" in result.output


def test_oncall_who_answers_for_a_tenant_from_its_own_schedules() -> None:
    args = ["oncall", "who", "--schedule", "web-primary", "--config", "examples/config",
            "--at", "2026-02-02T10:00:00Z"]  # fmt: skip
    theirs = CliRunner().invoke(cli, [*args, "--tenant", "acme"])
    assert theirs.exit_code == 0 and "Erin Walsh (erin)" in theirs.output
    mine = CliRunner().invoke(cli, args)  # the provider's config has no such schedule
    assert mine.exit_code != 0 and "no schedule 'web-primary'" in mine.output
    nobody = CliRunner().invoke(cli, [*args, "--tenant", "initech"])
    assert nobody.exit_code != 0 and "no tenant 'initech' (known: acme, default)" in nobody.output
