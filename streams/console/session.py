"""Console sessions: a login with an API token gives an encrypted session cookie
(HttpOnly, SameSite=Strict), and a CSRF token that every action form carries.

The session is the cookie: Fernet (cryptography) encrypts and authenticates it with a
key derived from `TOCSIN_CONSOLE_SECRET` (or the file `TOCSIN_CONSOLE_SECRET_FILE`
names), and stamps the time it was made, so any API replica with the same secret
reads it, a restart keeps everyone logged in, and a cookie that was changed, made with
another key or is older than the session's lifetime is refused. Without a secret each
process makes a random key and says so: sessions then end with the process and hold on
one replica only.

The cookie keeps the token's digest, not the token, and the principal is looked up in
the config's tokens on every request, so a token removed from the config (or given
another role) ends (or changes) its sessions. Logging out deletes the cookie and
refuses that session on this replica until it would have expired; a copy of the
cookie taken before the logout still works on another replica until then (the
lifetime bounds it: `TOCSIN_CONSOLE_SESSION_HOURS`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from streams.api.auth import Principal, Tokens, digest
from streams.settings import SecretFileSettings

log = structlog.get_logger(__name__)
COOKIE = "tocsin_console"
TTL = 12 * 3600.0
MIN_SECRET = 32
MAX_REVOKED = 100_000


class ConsoleSettings(SecretFileSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_CONSOLE_", frozen=True, extra="ignore")

    secret: SecretStr | None = None
    session_hours: float = Field(default=TTL / 3600, gt=0, le=24 * 30)

    @field_validator("secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        # compose passes `${TOCSIN_CONSOLE_SECRET:-}` through: set but empty is unset
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().strip()) < MIN_SECRET:
            raise ValueError(f"TOCSIN_CONSOLE_SECRET: at least {MIN_SECRET} characters "
                             "(`openssl rand -base64 32` makes one)")  # fmt: skip
        return v


def session_key(secret: str) -> bytes:
    """The Fernet key of a secret: HKDF, so any long random text will do as the secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"tocsin console sessions").derive(secret.strip().encode())  # fmt: skip
    return base64.urlsafe_b64encode(raw)


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token_digest: str
    csrf: str
    expires: float
    sid: str


class Sessions:
    def __init__(self, tokens: Tokens, settings: ConsoleSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        settings = settings or ConsoleSettings()
        self._tokens = tokens
        self._clock = clock
        self.ttl = settings.session_hours * 3600
        if settings.secret is None:
            log.warning("console_secret_unset", hint="console sessions end when this process "
                        "stops and hold on this replica only: set TOCSIN_CONSOLE_SECRET or "
                        "TOCSIN_CONSOLE_SECRET_FILE")  # fmt: skip
            key = Fernet.generate_key()
        else:
            key = session_key(settings.secret.get_secret_value())
        self._fernet = Fernet(key)
        self._revoked: dict[str, float] = {}

    def login(self, token: str) -> tuple[str, Session] | None:
        """The cookie value and the session for a known token; None for any other."""
        who = self._tokens.principal(f"Bearer {token.strip()}")
        if who is None:
            return None
        doc = {"s": secrets.token_urlsafe(16), "d": digest(token.strip()),
               "c": secrets.token_urlsafe(32)}  # fmt: skip
        now = int(self._clock())
        cookie = self._fernet.encrypt_at_time(orjson.dumps(doc), now).decode()
        return cookie, Session(who, doc["d"], doc["c"], now + self.ttl, doc["s"])

    def get(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None: absent, altered, made with another key,
        expired, logged out here, or its token no longer in the config."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            token = cookie.encode("ascii")
            plain = self._fernet.decrypt_at_time(token, int(self.ttl), int(self._clock()))
            doc: dict[str, Any] = orjson.loads(plain)
            made = self._fernet.extract_timestamp(token)
            sid, token_digest, csrf = str(doc["s"]), str(doc["d"]), str(doc["c"])
        except (InvalidToken, UnicodeEncodeError, orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if sid in self._revoked:
            return None
        who = self._tokens.by_digest(token_digest)
        if who is None:
            return None
        return Session(who, token_digest, csrf, made + self.ttl, sid)

    def logout(self, cookie: str | None) -> None:
        s = self.get(cookie)
        if s is None:
            return
        self._sweep()
        self._revoked[s.sid] = s.expires

    @staticmethod
    def csrf_ok(s: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(s.csrf.encode(), (given or "").encode())

    def _sweep(self) -> None:
        now = self._clock()
        for sid in [k for k, until in self._revoked.items() if until < now]:
            del self._revoked[sid]
        while len(self._revoked) >= MAX_REVOKED:  # the oldest go first
            self._revoked.pop(next(iter(self._revoked)))
