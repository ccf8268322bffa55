"""Config look-ups by id in O(1): `Config.service(id)` and friends scan their lists, and
the core asks several times per transition (priority, policy, targets)."""

from __future__ import annotations

from typing import TypeVar

from schemas.config.models import Config, EscalationPolicy, Schedule, Service, Team, User

T = TypeVar("T", User, Team, Service, EscalationPolicy, Schedule)


def _by_id(items: list[T]) -> dict[str, T]:
    out: dict[str, T] = {}
    for item in items:
        out.setdefault(item.id, item)  # the first wins, as in Config's own look-ups
    return out


class Index:
    __slots__ = ("policies", "schedules", "services", "teams", "users")

    def __init__(self, cfg: Config) -> None:
        self.users = _by_id(cfg.users)
        self.teams = _by_id(cfg.teams)
        self.services = _by_id(cfg.services)
        self.policies = _by_id(cfg.escalation_policies)
        self.schedules = _by_id(cfg.schedules)


_INDEXES: dict[int, tuple[Config, Index]] = {}


def index(cfg: Config) -> Index:
    """The index of this Config object (configs are frozen; built once per object)."""
    hit = _INDEXES.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_INDEXES) > 256:  # many configs over a long life (tests): start over
            _INDEXES.clear()
        hit = _INDEXES[id(cfg)] = (cfg, Index(cfg))
    return hit[1]
