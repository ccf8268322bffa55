"""The console's sessions (token -> session, CSRF, expiry, a token removed from the
config) and its server-drawn charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.config import Config
from streams.api.auth import Tokens, digest
from streams.console import charts
from streams.console.session import Sessions


def _tokens(*tokens: str) -> Tokens:
    return Tokens(Config.model_validate({"users": [{"id": "u0", "name": "U"}], "api_tokens": [
        {"user": "u0", "role": "responder", "sha256": digest(t)} for t in tokens
    ]}))  # fmt: skip


def test_a_token_logs_in_and_its_session_carries_a_csrf_token() -> None:
    sessions = Sessions(_tokens("tsn_a"))
    assert sessions.login("tsn_wrong") is None
    made = sessions.login("tsn_a")
    assert made is not None
    sid, s = made
    assert "tsn_a" not in sid and s.principal.user == "u0"
    assert sessions.get(sid) == s
    assert Sessions.csrf_ok(s, s.csrf)
    assert not Sessions.csrf_ok(s, "forged") and not Sessions.csrf_ok(s, None)
    sessions.logout(sid)
    assert sessions.get(sid) is None


def test_a_session_ends_when_it_expires_or_its_token_leaves_the_config() -> None:
    made = Sessions(_tokens("tsn_a"), ttl=-1).login("tsn_a")
    assert made is not None
    assert Sessions(_tokens("tsn_a")).get(made[0]) is None, "another worker's id"
    sessions = Sessions(_tokens("tsn_a"), ttl=-1)
    sid, _ = sessions.login("tsn_a") or ("", None)
    assert sessions.get(sid) is None, "expired"
    sessions = Sessions(_tokens("tsn_a"))
    sid, _ = sessions.login("tsn_a") or ("", None)
    sessions._tokens = _tokens("tsn_b")  # the config reloaded without it
    assert sessions.get(sid) is None


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
