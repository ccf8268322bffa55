"""Who gets through the gateway (credentials) and how often (rate limits), without a
server: the decisions the routes and the CLI make."""

from __future__ import annotations

import gzip
from pathlib import Path

import click
import orjson
import pytest

from streams.cli.run_gateway import open_access, secret, secret_set
from streams.gateway.auth import MAX_EVENT, Credentials, routing_key_of
from streams.gateway.limits import RateLimit, RateLimiter, retry_after

TOKENS = frozenset({"tok-a", "tok-b"})
KEYS = frozenset({"R" * 32})


def test_bearer_routes_need_one_of_the_tokens() -> None:
    c = Credentials(TOKENS, KEYS)
    assert c.bearer("Bearer tok-a", "1.2.3.4") == c.bearer("bearer  tok-a ", "5.6.7.8")
    assert c.bearer("Bearer tok-a", "x") != c.bearer("Bearer tok-b", "x")
    assert "tok-a" not in (c.bearer("Bearer tok-a", "x") or ""), "an id, never the secret"
    for header in (None, "", "Bearer", "Bearer tok-c", "Basic tok-a", "tok-a", "Bearer tök"):
        assert c.bearer(header, "1.2.3.4") is None, header


def test_no_tokens_means_refused_unless_open_and_open_is_per_address() -> None:
    assert Credentials(frozenset(), KEYS).bearer("Bearer anything", "1.2.3.4") is None
    assert Credentials().bearer(None, "1.2.3.4") is None
    open_ = Credentials(open=True)
    assert open_.bearer(None, "1.2.3.4") == "open:1.2.3.4" != open_.bearer(None, "5.6.7.8")


def test_pagerduty_accepts_an_intake_key_or_a_token_and_nothing_else() -> None:
    c = Credentials(TOKENS, KEYS)
    assert c.pagerduty(None, "R" * 32, "ip") is not None
    assert c.pagerduty(None, "tok-b", "ip") is not None  # a token as routing key
    assert c.pagerduty("Bearer tok-a", "anything-at-all", "ip") is not None
    for key in ("anything-at-all", "R" * 31, "", None):
        assert c.pagerduty(None, key, "ip") is None, key
        assert c.pagerduty("Bearer nope", key, "ip") is None, key


def test_pagerduty_with_tokens_but_no_intake_keys_refuses_any_other_key() -> None:
    """The reproduced attack: tokens set, the key list empty, any key accepted."""
    c = Credentials(TOKENS)
    assert c.pagerduty(None, "anything-at-all", "ip") is None
    assert c.pagerduty(None, "tok-a", "ip") is not None


def test_pagerduty_with_no_credentials_is_open_only_in_open_mode() -> None:
    assert Credentials().pagerduty(None, "anything-at-all", "ip") is None
    assert Credentials(open=True).pagerduty(None, "anything-at-all", "ip") == "open:ip"
    # open mode does not open a route whose credentials are configured
    assert Credentials(frozenset(), KEYS, open=True).pagerduty(None, "nope", "ip") is None


def test_routing_key_is_read_from_plain_and_gzipped_bodies_only_when_present() -> None:
    body = orjson.dumps({"routing_key": "R" * 32, "event_action": "trigger"})
    assert routing_key_of(body, None) == "R" * 32
    assert routing_key_of(gzip.compress(body), "gzip") == "R" * 32
    for raw in (
        b"",
        b"[]",
        b"not json",
        b'{"routing_key": 7}',
        b'{"routing_key": ""}',
        b"[" * 2000 + b"]" * 2000,
    ):
        assert routing_key_of(raw, None) is None
    assert routing_key_of(b"\x1f\x8b garbage", "gzip") is None
    # a bomb from someone without credentials is not inflated beyond an event's size
    bomb = gzip.compress(b'{"routing_key": "' + b"R" * 32 + b'", "x": "' + b" " * 2**21 + b'"}')
    assert len(bomb) < MAX_EVENT and routing_key_of(bomb, "gzip") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_credential_gets_its_burst_then_its_rate_and_others_are_untouched() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(rate=2.0, burst=3), clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5) and retry_after(wait) == "1"
    assert limiter.take("b") == 0.0, "another credential has its own bucket"
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)].count(0.0) == 3, "refills up to the burst"


def test_rate_zero_turns_the_limit_off_and_buckets_are_bounded() -> None:
    assert all(RateLimiter(RateLimit(0, 1)).take("a") == 0.0 for _ in range(10_000))
    limiter = RateLimiter(RateLimit(1, 1), max_buckets=10)
    for i in range(100):
        limiter.take(f"open:{i}")
    assert len(limiter._buckets) == 10
    with pytest.raises(ValueError):
        RateLimit(-1, 1)
    assert retry_after(0.001) == "1" and retry_after(2.2) == "3"


def test_the_cli_refuses_an_open_gateway_beyond_loopback() -> None:
    with pytest.raises(click.ClickException) as err:
        open_access("0.0.0.0", set(), set(), slack=False, insecure=False)
    message = err.value.message
    for name in (
        "TOCSIN_GATEWAY_TOKENS",
        "TOCSIN_PAGERDUTY_INTAKE_KEYS",
        "--insecure-no-auth",
        "TOCSIN_GATEWAY_INSECURE_NO_AUTH",
        "--host 127.0.0.1",
    ):
        assert name in message
    with pytest.raises(click.ClickException):
        open_access("10.0.0.5", set(), set(), slack=False, insecure=False)


@pytest.mark.parametrize(
    ("host", "tokens", "keys", "slack", "insecure", "open_"),
    [
        ("127.0.0.1", set(), set(), False, False, True),  # local development
        ("::1", set(), set(), False, False, True),
        ("[::1]", set(), set(), False, False, True),
        ("localhost", set(), set(), False, False, True),
        ("0.0.0.0", set(), set(), False, True, True),  # told so
        ("0.0.0.0", {"t"}, set(), False, False, False),
        ("0.0.0.0", {"t"}, set(), False, True, False),  # tokens: nothing is left open
        ("0.0.0.0", set(), {"k"}, False, False, False),  # bearer routes refuse
        ("0.0.0.0", set(), set(), True, False, False),  # Slack only: intakes refuse
        ("127.0.0.1", {"t"}, {"k"}, False, False, False),
    ],
)
def test_which_gateways_are_open(
    host: str, tokens: set[str], keys: set[str], slack: bool, insecure: bool, open_: bool
) -> None:
    assert open_access(host, tokens, keys, slack=slack, insecure=insecure) is open_


def test_a_secret_file_that_is_absent_counts_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_GATEWAY_TOKENS_FILE", str(tmp_path / "no-such-key"))
    monkeypatch.setenv("TOCSIN_GATEWAY_TOKENS", "ignored-when-a-file-is-named")
    assert secret("TOCSIN_GATEWAY_TOKENS") is None and secret_set("TOCSIN_GATEWAY_TOKENS") == set()
    (tmp_path / "tokens").write_text(" a, b ,\n")
    monkeypatch.setenv("TOCSIN_GATEWAY_TOKENS_FILE", str(tmp_path / "tokens"))
    assert secret_set("TOCSIN_GATEWAY_TOKENS") == {"a", "b"}
