"""Who may act on an incident from Slack.

connectors stays independent of where users and teams are configured: the gateway
hands in any ``ResponderDirectory``. ``StaticDirectory`` is the minimal mapping (tests,
or ``TOCSIN_SLACK_RESPONDERS`` without a config file); streams wires the YAML config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class ResponderDirectory(Protocol):
    def user_of(self, slack_user_id: str) -> str | None:
        """The tocsin user id behind a Slack user id (None: unknown to tocsin)."""
        ...

    def may_act(self, slack_user_id: str, team: str | None) -> bool:
        """True for members of ``team`` and for its configured responders."""
        ...


@dataclass(frozen=True)
class StaticDirectory:
    """``teams``: team -> Slack user ids allowed to act; ``anywhere``: may act on all."""

    teams: Mapping[str, frozenset[str]] = field(default_factory=dict)
    anywhere: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)  # Slack id -> tocsin user id

    @classmethod
    def of(cls, anywhere: Iterable[str] = (), **teams: Iterable[str]) -> StaticDirectory:
        return cls({t: frozenset(u) for t, u in teams.items()}, frozenset(anywhere))

    def user_of(self, slack_user_id: str) -> str | None:
        known = slack_user_id in self.anywhere or any(
            slack_user_id in users for users in self.teams.values()
        )
        return self.names.get(slack_user_id, slack_user_id) if known else None

    def may_act(self, slack_user_id: str, team: str | None) -> bool:
        if slack_user_id in self.anywhere:
            return True
        if team is None:  # an incident no team owns: any member of any team may act
            return self.user_of(slack_user_id) is not None
        return slack_user_id in self.teams.get(team, frozenset())
