"""The store's settings: a DSN that is not PostgreSQL stops every worker that opens the
store with a message naming the setting and never the password it carried."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli.main import cli

EXAMPLE = str(Path(__file__).parents[3] / "examples" / "config")


@pytest.mark.parametrize("args", [["run", "projector"], ["projector", "rebuild", "--yes"],
                                  ["run", "api", "--config", EXAMPLE]])  # fmt: skip
def test_a_wrong_dsn_is_refused_without_repeating_its_password(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_STORE_DSN", "mysql://tocsin:pa55-w0rd@db/tocsin")
    got = CliRunner().invoke(cli, args)
    assert got.exit_code != 0
    assert "TOCSIN_STORE_DSN: 'mysql' is not PostgreSQL" in got.output
    assert "pa55-w0rd" not in got.output
