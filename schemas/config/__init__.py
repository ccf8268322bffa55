"""Configuration as code: users, teams, services, routes, escalation, schedules."""

from schemas.config.heartbeats import Heartbeat
from schemas.config.installation import Installation, load_installation
from schemas.config.loader import load_config
from schemas.config.models import (
    Config,
    EscalationLevel,
    EscalationPolicy,
    EscalationTarget,
    Layer,
    Override,
    Route,
    Schedule,
    Service,
    Team,
    User,
)

__all__ = [
    "Config",
    "EscalationLevel",
    "EscalationPolicy",
    "EscalationTarget",
    "Heartbeat",
    "Installation",
    "Layer",
    "Override",
    "Route",
    "Schedule",
    "Service",
    "Team",
    "User",
    "load_config",
    "load_installation",
]
