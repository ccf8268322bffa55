from __future__ import annotations

import json
from pathlib import Path

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


def _logged(capsys: pytest.CaptureFixture[str], **fields: object) -> dict[str, object]:
    configure_logging(LogSettings(format="json"))
    try:
        structlog.get_logger("t").info("handled", **fields)
        return json.loads(capsys.readouterr().err.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        structlog.reset_defaults()


def test_counts_flags_and_ids_survive_even_under_secret_sounding_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _logged(capsys, tokens=3, slack_signing=True, token_count=2, secret_name="slack",
                   token_id="tk-7", dedup_key="db-1/disk", incident_id="inc-ab12-cd34",
                   event_key="e93facc04764012d7bfb002500d5d1a6", api_key=None)  # fmt: skip
    assert line["tokens"] == 3 and line["slack_signing"] is True and line["token_count"] == 2
    assert line["secret_name"] == "slack" and line["token_id"] == "tk-7"
    assert line["dedup_key"] == "db-1/disk" and line["incident_id"] == "inc-ab12-cd34"
    assert line["event_key"] == "e93facc04764012d7bfb002500d5d1a6", "a hex id is not a key"
    assert line["api_key"] is None


def test_secret_fields_and_secret_looking_values_are_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _logged(
        capsys,
        tokens=["tok-aaaaaaaaaaaa", "tok-bbbbbbbbbbbb"],
        routingKey="e93facc04764012d7bfb002500d5d1a6",
        headers={"Authorization": "Bearer s3cr3t-t0ken", "Accept": "application/json", "n": 2},
        error="slack said invalid_auth for xoxb-1234-5678-AbCdEf",
        url="https://alice:hunter2@hooks.example.com/x?token=abc123&n=3",
        webhook="https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
        body='{"routing_key": "e93facc04764012d7bfb002500d5d1a6", "event_action": "trigger"}',
        orchestration="R0ABCDEFGHIJKLMNOPQRSTUVWXYZ1234",
        note="Authorization: Bearer abcdefghij1234",
    )
    assert line["tokens"] == "***" and line["routingKey"] == "***"
    assert line["headers"] == {"Authorization": "***", "Accept": "application/json", "n": 2}
    assert line["error"] == "slack said invalid_auth for xoxb-***"
    assert line["url"] == "https://alice:***@hooks.example.com/x?token=***&n=3"
    assert line["webhook"] == "https://hooks.slack.com/services/***"
    assert line["body"] == '{"routing_key": "***", "event_action": "trigger"}'
    assert line["orchestration"] == "***" and line["note"] == "Authorization: Bearer ***"
    assert "hunter2" not in str(line) and "abc123" not in str(line)


def test_a_traceback_is_cleaned_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(format="json"))
    try:
        raise RuntimeError("connect to postgres://tocsin:pa55word@db:5432/tocsin failed")
    except RuntimeError:
        structlog.get_logger("t").exception("store_failed", attempts=3)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    structlog.reset_defaults()
    assert "pa55word" not in line["exception"] and "postgres://tocsin:***@db" in line["exception"]
    assert line["attempts"] == 3


def test_the_callers_dict_is_not_changed(capsys: pytest.CaptureFixture[str]) -> None:
    headers = {"Authorization": "Bearer s3cr3t-t0ken"}
    assert _logged(capsys, headers=headers)["headers"] == {"Authorization": "***"}
    assert headers == {"Authorization": "Bearer s3cr3t-t0ken"}


def test_kafka_client_lines_join_the_json_log_once_per_kind(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A broker away: librdkafka's reconnect lines come out as the worker's JSON objects,
    one per kind in the rate limit's interval, never as raw lines of its own format."""
    import time

    from streams.kafka import make_producer
    from streams.settings import KafkaSettings

    configure_logging(LogSettings(format="json"))
    try:
        producer = make_producer(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
        producer.produce("t", b"v")
        deadline = time.monotonic() + 30
        lines: list[dict[str, object]] = []
        # librdkafka retries the refused connect several times a second
        while time.monotonic() < deadline and len(lines) < 1:
            producer.poll(0.2)
            lines = [json.loads(x) for x in capfd.readouterr().err.splitlines()]
        for _ in range(15):
            producer.poll(0.2)
        err = capfd.readouterr().err
        assert "%3|" not in err, "no raw librdkafka line"
        later = [json.loads(x) for x in err.splitlines()]
        fails = [x for x in [*lines, *later] if str(x["event"]).startswith("FAIL")]
        assert len(fails) == 1, fails
        assert fails[0]["logger"] == "tocsin.rdkafka" and fails[0]["level"] == "error"
        assert "127.0.0.1:1" in str(fails[0]["event"])
        producer.purge()
        producer.flush(0)
    finally:
        structlog.reset_defaults()


def test_lines_can_go_to_a_file_instead_of_the_terminal(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The demo's terminal is the story: its own lines, a client library's included,
    go to its log file, as JSON, and none to stderr."""
    import logging

    path = tmp_path / "demo.log"
    with path.open("a", buffering=1) as file:
        configure_logging(LogSettings(), file=file)
        try:
            structlog.get_logger("tocsin.demo").warning("own_line", token="xoxb-123456789")
            logging.getLogger("tocsin.rdkafka").warning("GETPID: Coordinator load in progress")
        finally:
            configure_logging(LogSettings())
            structlog.reset_defaults()
    assert capfd.readouterr().err == ""
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["own_line", "GETPID: Coordinator load in progress"]
    assert "xoxb-123456789" not in path.read_text(), "secrets masked in the file too"
