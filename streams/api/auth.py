"""API tokens: per user, with a role, from the config, where only their SHA-256 digest is
kept. A token is a random 256-bit secret (`new_token`), so one round of SHA-256 is
enough to keep it from being read back out of the config; the lookup hashes what was
given and finds the digest, so no comparison on the secret itself can leak timing.

A token acts within one tenant: a tenant's own file's tokens in that tenant, the
provider's file's in the tenant each names (``default`` unless told). Only the
``provider`` role (the provider's file only) chooses another tenant per request
(``Principal.acting_for``)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from schemas.config import Config

RANK = {"viewer": 0, "responder": 1, "admin": 2, "provider": 3}
PREFIX = "tsn_"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str
    tenant: str

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    @property
    def provider(self) -> bool:
        return self.role == "provider"

    def acting_for(self, tenant: str) -> Principal:
        return replace(self, tenant=tenant)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode(errors="replace")).hexdigest()


def new_token() -> tuple[str, str]:
    """A new token and its digest (the digest goes into the config, the token to its user)."""
    token = PREFIX + secrets.token_urlsafe(32)
    return token, digest(token)


class Tokens:
    def __init__(self, cfg: Config, tenants: Mapping[str, Config] | None = None) -> None:
        """The tokens of ``cfg`` (the provider's) and of every tenant's config."""
        self._by_digest: dict[str, Principal] = {}
        for tenant, c in {cfg.tenant: cfg, **(tenants or {})}.items():
            for t in c.api_tokens:
                acts_in = t.tenant if tenant == "default" else tenant
                self._by_digest[t.sha256] = Principal(t.user, t.role, acts_in)

    def __len__(self) -> int:
        return len(self._by_digest)

    def known(self, token_digest: str) -> bool:
        return token_digest in self._by_digest

    def by_digest(self, token_digest: str) -> Principal | None:
        return self._by_digest.get(token_digest)

    def principal(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            return None
        return self._by_digest.get(digest(token))
