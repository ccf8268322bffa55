"""Console sessions: a login with an API token gives a random session id in an HttpOnly,
SameSite=Strict cookie, and a CSRF token that every action form carries.

Sessions live in the API worker's memory: a restart logs everyone out, which costs a
login and keeps no secret on disk. The session keeps the token's digest, not the token,
and is checked against the config's tokens on every request, so a token removed from the
config ends its sessions."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from streams.api.auth import Principal, Tokens, digest

COOKIE = "tocsin_console"
TTL = 12 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token_digest: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, tokens: Tokens, ttl: float = TTL) -> None:
        self._tokens = tokens
        self._ttl = ttl
        self._by_id: dict[str, Session] = {}

    def login(self, token: str) -> tuple[str, Session] | None:
        who = self._tokens.principal(f"Bearer {token.strip()}")
        if who is None:
            return None
        self._sweep()
        sid = secrets.token_urlsafe(32)
        s = Session(who, digest(token.strip()), secrets.token_urlsafe(32), time.time() + self._ttl)
        self._by_id[sid] = s
        return sid, s

    def get(self, sid: str | None) -> Session | None:
        s = self._by_id.get(sid) if sid else None
        if s is None:
            return None
        if s.expires < time.time() or not self._tokens.known(s.token_digest):
            self._by_id.pop(sid or "", None)
            return None
        return s

    def logout(self, sid: str | None) -> None:
        self._by_id.pop(sid or "", None)

    @staticmethod
    def csrf_ok(s: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(s.csrf.encode(), (given or "").encode())

    def _sweep(self) -> None:
        now = time.time()
        for sid in [k for k, s in self._by_id.items() if s.expires < now]:
            del self._by_id[sid]
        while len(self._by_id) >= MAX_SESSIONS:  # the oldest go first
            self._by_id.pop(next(iter(self._by_id)))
