from __future__ import annotations

import json

import pytest
import structlog

from streams.logs import bind_event, configure_logging
from streams.settings import LogSettings


def test_json_logs_carry_the_event_id_and_hide_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(format="json"))
    log = structlog.get_logger("t")
    with bind_event("ev-123"):
        log.info("handled", slack_token="xoxb-secret", value=3)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event_id"] == "ev-123"
    assert line["slack_token"] == "***"
    assert line["value"] == 3
    structlog.reset_defaults()


def test_values_orjson_refuses_are_still_logged(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(format="json"))
    structlog.get_logger("t").info("big", n=2**70, at=object(), by={1: "one"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["n"] == 2**70 and line["by"] == {"1": "one"} and line["at"].startswith("<object")
    structlog.reset_defaults()
