"""Who may act from Slack, wired from the YAML config (schemas.config), and which team
owns each incident, read from the compacted `incidents` topic."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from connectors.slack.auth import StaticDirectory
from schemas import DecodeError, Incident, decode
from schemas.config import Config
from streams.gateway.follower import TopicFollower
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


class ConfigDirectory:
    """ResponderDirectory over the config: a team's members and its ``responders``."""

    def __init__(self, config: Config) -> None:
        self._by_slack = {u.slack_id: u.id for u in config.users if u.slack_id}
        self._teams = {t.id: {*t.members, *t.responders} for t in config.teams}
        self._anyone = set().union(*self._teams.values()) if self._teams else set()

    def user_of(self, slack_user_id: str) -> str | None:
        return self._by_slack.get(slack_user_id)

    def may_act(self, slack_user_id: str, team: str | None) -> bool:
        user = self.user_of(slack_user_id)
        if user is None:
            return False
        if team is None or team not in self._teams:
            return user in self._anyone  # no owning team: any team member or responder
        return user in self._teams[team]


def provider_staff(config: Config | None) -> dict[str, str]:
    """Slack user id -> user id of the provider's staff with the ``provider`` role (an API
    token of that role in the provider's own configuration, the only place it may be):
    they act on every tenant's incidents from Slack as that token does in the API."""
    if config is None:
        return {}
    ids = {t.user for t in config.api_tokens if t.role == "provider"}
    return {u.slack_id: u.id for u in config.users if u.slack_id and u.id in ids}


def directory_from_env(value: str | None) -> StaticDirectory:
    """``TOCSIN_SLACK_RESPONDERS="U1,U2"``: Slack users who may act on every incident."""
    ids = {v.strip() for v in (value or "").split(",") if v.strip()}
    return StaticDirectory(anywhere=frozenset(ids))


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident_id: str
    team: str | None
    status: str
    title: str
    priority: str
    assignee: str | None
    tenant: str = "default"


class IncidentIndex:
    """The latest snapshot of every incident, read from the compacted topic on a thread.

    Only what Slack needs (owning team for authorization, a line for `list`/`who`);
    resolved incidents are kept (an ack on a just-resolved incident is refused by the
    agents, not by the gateway).
    """

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._views: dict[str, IncidentView] = {}
        # (tenant, alert fingerprint) -> the incident that last listed it, and back: for
        # intakes that report on an alert of an incident (a Zabbix acknowledgement)
        self._by_alert: dict[tuple[str, str], str] = {}
        self._alerts_of: dict[str, list[tuple[str, str]]] = {}
        self._follower = TopicFollower(settings, topic, self._apply, "incident-index")

    @property
    def caught_up(self) -> bool:
        return self._follower.caught_up

    def start(self) -> IncidentIndex:
        self._follower.start()
        return self

    def stop(self) -> None:
        self._follower.stop()

    def get(self, incident_id: str) -> IncidentView | None:
        return self._views.get(incident_id)

    def incident_of(self, fingerprint: str, tenant: str = "default") -> str | None:
        """The incident of ``tenant`` whose latest snapshot lists the alert ``fingerprint``."""
        return self._by_alert.get((tenant, fingerprint))

    def open_incidents(self, tenant: str | None = None) -> list[IncidentView]:
        """Open incidents (of ``tenant`` only, when given), by priority."""
        return sorted((v for v in self._views.values() if v.status != "resolved"
                       and (tenant is None or v.tenant == tenant)),
                      key=lambda v: (v.priority, v.incident_id))  # fmt: skip

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if not value:  # a tombstone: the incident was compacted away
            if key:
                gone = key.decode(errors="replace")
                self._views.pop(gone, None)
                self._forget_alerts(gone)
            return
        try:
            inc = decode(Incident, value)
        except DecodeError:
            return  # the agents own this topic's validity; the gateway only reads it
        self._views[inc.incident_id] = IncidentView(
            inc.incident_id,
            inc.team,
            inc.status,
            inc.title,
            inc.priority,
            inc.assignee,
            inc.tenant,
        )
        self._forget_alerts(inc.incident_id)
        keys = [(inc.tenant, a.fingerprint) for a in inc.alerts]
        self._alerts_of[inc.incident_id] = keys
        for alert_key in keys:
            self._by_alert[alert_key] = inc.incident_id

    def _forget_alerts(self, incident_id: str) -> None:
        for key in self._alerts_of.pop(incident_id, ()):
            if self._by_alert.get(key) == incident_id:
                del self._by_alert[key]
