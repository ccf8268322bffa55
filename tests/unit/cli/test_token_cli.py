"""`tocsin token intake`: the printed line is a valid intake token of the printed secret."""

from __future__ import annotations

import hashlib

import yaml
from click.testing import CliRunner

from schemas.config.intake import Intake
from streams.cli.main import cli


def test_token_intake_prints_a_secret_and_the_intake_line_that_admits_it() -> None:
    out = CliRunner().invoke(cli, ["token", "intake", "--only", "checkmk", "--name", "cmk"])
    assert out.exit_code == 0, out.output
    secret_line, config_line = out.output.strip().splitlines()
    secret = secret_line.removeprefix("token (shown once): ")
    entry = yaml.safe_load(config_line.removeprefix("config:").strip())[0]
    intake = Intake.model_validate({"tokens": [entry]})
    assert intake.tokens[0].sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert intake.tokens[0].only == "checkmk" and secret not in config_line


def test_token_new_knows_the_provider_role() -> None:
    out = CliRunner().invoke(cli, ["token", "new", "--user", "alice", "--role", "provider"])
    assert out.exit_code == 0 and "role: provider" in out.output
