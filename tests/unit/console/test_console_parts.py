"""The console's sessions (token -> encrypted cookie, CSRF, the secret shared by
replicas, a changed cookie, expiry, a token removed from the config) and its server-drawn charts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.api import Silence
from schemas.commands import Matcher, Weekly
from schemas.config import Config
from streams.api.auth import Tokens, digest
from streams.console import charts, web
from streams.console.session import ConsoleSettings, Sessions


def _tokens(*tokens: str) -> Tokens:
    return Tokens(Config.model_validate({"users": [{"id": "u0", "name": "U"}], "api_tokens": [
        {"user": "u0", "role": "responder", "sha256": digest(t)} for t in tokens
    ]}))  # fmt: skip


SECRET = "s3cret-of-the-console-that-is-long-enough"


def _sessions(tokens: Tokens, secret: str | None = SECRET, clock: float = 1_800_000_000.0,
              hours: float = 12) -> Sessions:  # fmt: skip
    settings = ConsoleSettings(secret=secret, session_hours=hours)  # type: ignore[arg-type]
    return Sessions(tokens, settings, clock=lambda: clock)


def test_a_token_logs_in_and_its_session_carries_a_csrf_token() -> None:
    sessions = _sessions(_tokens("tsn_a"))
    assert sessions.login("tsn_wrong") is None
    made = sessions.login("tsn_a")
    assert made is not None
    cookie, s = made
    assert "tsn_a" not in cookie and digest("tsn_a") not in cookie, "encrypted"
    assert s.principal.user == "u0"
    assert sessions.get(cookie) == s
    assert Sessions.csrf_ok(s, s.csrf)
    assert not Sessions.csrf_ok(s, "forged") and not Sessions.csrf_ok(s, None)
    sessions.logout(cookie)
    assert sessions.get(cookie) is None


def test_a_session_holds_wherever_the_secret_is_the_same_and_nowhere_else() -> None:
    cookie, s = _sessions(_tokens("tsn_a")).login("tsn_a") or ("", None)
    assert _sessions(_tokens("tsn_a")).get(cookie) == s, "a restart, another replica"
    assert _sessions(_tokens("tsn_a"), secret="another-secret-" + "x" * 32).get(cookie) is None
    assert _sessions(_tokens("tsn_a"), secret=None).get(cookie) is None, "a random key"
    unset = _sessions(_tokens("tsn_a"), secret=None)
    cookie, _ = unset.login("tsn_a") or ("", None)
    assert unset.get(cookie) is not None, "the random key works in its own process"
    assert _sessions(_tokens("tsn_a"), secret=None).get(cookie) is None


def test_a_changed_cookie_is_refused() -> None:
    sessions = _sessions(_tokens("tsn_a"))
    cookie, _ = sessions.login("tsn_a") or ("", None)
    for i in (10, len(cookie) // 2, len(cookie) - 5):
        flipped = cookie[:i] + ("A" if cookie[i] != "A" else "B") + cookie[i + 1 :]
        assert sessions.get(flipped) is None, i
    for junk in ("", "x", "é" * 10, "A" * 5000, cookie + "=="):
        assert sessions.get(junk) is None


def test_a_session_ends_when_it_expires_or_its_token_leaves_the_config() -> None:
    t0 = 1_800_000_000.0
    cookie, _ = _sessions(_tokens("tsn_a"), clock=t0, hours=1).login("tsn_a") or ("", None)
    assert _sessions(_tokens("tsn_a"), clock=t0 + 3590, hours=1).get(cookie) is not None
    assert _sessions(_tokens("tsn_a"), clock=t0 + 3610, hours=1).get(cookie) is None, "expired"
    sessions = _sessions(_tokens("tsn_a"))
    cookie, _ = sessions.login("tsn_a") or ("", None)
    sessions._tokens = _tokens("tsn_b")  # the config reloaded without it
    assert sessions.get(cookie) is None


def test_the_console_secret_comes_from_a_file_and_must_be_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOCSIN_CONSOLE_SECRET", raising=False)
    (tmp_path / "secret").write_text(SECRET + "\n")
    monkeypatch.setenv("TOCSIN_CONSOLE_SECRET_FILE", str(tmp_path / "secret"))
    got = ConsoleSettings().secret
    assert got is not None and got.get_secret_value().strip() == SECRET
    assert SECRET not in repr(ConsoleSettings())
    monkeypatch.delenv("TOCSIN_CONSOLE_SECRET_FILE")
    monkeypatch.setenv("TOCSIN_CONSOLE_SECRET", "short")
    with pytest.raises(ValidationError, match="TOCSIN_CONSOLE_SECRET: at least 32"):
        ConsoleSettings()


def test_charts_escape_labels_and_leave_gaps_where_a_bucket_had_nothing() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [t0 + timedelta(days=i) for i in range(4)]
    svg = charts.lines("trend", starts, [charts.Series("MTTR", "mttr", [60.0, None, 120.0, 90.0])])
    assert svg.count("<polyline") == 2, "a gap splits the line"
    assert svg.count("<circle") == 3
    bars = charts.bars("per service", [("<script>", 3), ("db", 5)])
    assert "<script>" not in bars and "&lt;script&gt;" in bars
    assert bars.index("db") < bars.index("&lt;script&gt;"), "largest first"
    assert "no incidents" in charts.bars("none", [])


def test_the_api_worker_refuses_a_short_secret_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from streams.cli.run_api import api

    monkeypatch.setenv("TOCSIN_CONSOLE_SECRET", "tooshort-secret")
    config = Path(__file__).parents[3] / "examples" / "config"
    got = CliRunner().invoke(api, ["--config", str(config)])
    assert got.exit_code != 0
    assert "TOCSIN_CONSOLE_SECRET: at least 32 characters" in got.output
    assert "tooshort-secret" not in got.output


def test_an_empty_console_secret_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_CONSOLE_SECRET", "")
    assert ConsoleSettings().secret is None


def test_numbers_read_as_slack_shows_them() -> None:
    assert [web.number(v) for v in (837.293230526984, 300.0, 0.0833333, 12040.4, None)] == [
        "837.3", "300", "0.08333", "12,040", "\N{EN DASH}"]  # fmt: skip


def test_a_weekly_maintenance_window_is_listed_with_its_length() -> None:
    weekly = Weekly(days=["sat", "sun"], start=time(2, 0), duration=timedelta(hours=3),
                    timezone="Europe/Berlin")  # fmt: skip
    at = datetime(2026, 1, 1, tzinfo=UTC)
    item = Silence(silence_id="s1", state="active", matchers=[Matcher(label="service",
                   op="=", value="db")], starts_at=at, ends_at=at + timedelta(days=90),
                   author="ops", comment="patch night", weekly=weekly, created_at=at,
                   expired_at=None, expired_by=None)  # fmt: skip
    page = web._env.get_template("silences.html").render(
        base="/console", session=None, may_act=False, csrf="", path="/console/silences",
        tenants=(), items=[item], error=None, sent=None, stale=None)  # fmt: skip
    assert "weekly sat,sun 02:00 for 3:00:00 Europe/Berlin" in page
