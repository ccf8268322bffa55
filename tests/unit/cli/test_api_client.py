"""The CLI's API client: a write tried again while Kafka or the API is briefly away is
one command (one Idempotency-Key across its tries); a read is not retried."""

from __future__ import annotations

import click
import httpx
import pytest

from streams.cli.client import WRITE_ATTEMPTS, Client


def _client(monkeypatch: pytest.MonkeyPatch, answers: list[httpx.Response | Exception]
            ) -> tuple[Client, list[httpx.Request], list[float]]:  # fmt: skip
    monkeypatch.setenv("TOCSIN_API_TOKEN", "tsn_test")
    seen: list[httpx.Request] = []
    slept: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    c = Client()
    c._http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))
    c.sleep = slept.append  # type: ignore[method-assign]
    return c, seen, slept


def test_a_write_is_retried_under_one_key_until_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    c, seen, slept = _client(monkeypatch, [
        httpx.Response(503, json={"error": "Kafka did not acknowledge"},
                       headers={"Retry-After": "5"}),
        httpx.ConnectError("refused"),
        httpx.Response(429, json={"error": "busy"}, headers={"Retry-After": "600"}),
        httpx.Response(202, json={"command_id": "c1"}),
    ])  # fmt: skip
    assert c.json("POST", "/incidents/inc-1/ack", json={})["command_id"] == "c1"
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1, "every try is the same command"
    assert slept == [5.0, 2.0, 10.0], "Retry-After honoured, and bounded"


def test_a_write_gives_up_with_the_apis_error(monkeypatch: pytest.MonkeyPatch) -> None:
    away = [httpx.Response(503, json={"error": "store unreachable"})] * WRITE_ATTEMPTS
    c, seen, _ = _client(monkeypatch, list(away))
    with pytest.raises(click.ClickException, match="503: store unreachable"):
        c.json("POST", "/silences", json={})
    assert len(seen) == WRITE_ATTEMPTS


def test_two_writes_are_two_commands_and_a_read_is_tried_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, seen, _ = _client(monkeypatch, [
        httpx.Response(202, json={}), httpx.Response(202, json={}),
        httpx.Response(503, json={"error": "store unreachable"})])  # fmt: skip
    c.json("POST", "/incidents/inc-1/note", json={"text": "a"})
    c.json("POST", "/incidents/inc-1/note", json={"text": "a"})
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]
    with pytest.raises(click.ClickException, match="503"):
        c.json("GET", "/incidents")
    assert len(seen) == 3 and "Idempotency-Key" not in seen[2].headers
