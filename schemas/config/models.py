"""The incident-response configuration, validated including cross-references."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.alerts import Severity
from schemas.commands import Matcher, Priority, SilenceSpec
from schemas.config.heartbeats import Heartbeat
from schemas.config.intake import Intake
from schemas.types import Duration, LabelKey, Name, ShortText, Tenant, Timestamp

_ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"
_ID = re.compile(_ID_PATTERN)
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=_ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class User(_Strict):
    id: Id
    name: Name
    slack_id: ShortText | None = None
    email: ShortText | None = None
    phone: ShortText | None = None


class Team(_Strict):
    id: Id
    members: list[Id] = Field(default_factory=list)
    slack_channel: ShortText | None = None
    responders: list[Id] = Field(default_factory=list, description="may act, not paged")


class Service(_Strict):
    id: Id
    team: Id
    criticality: Literal["critical", "high", "medium", "low"] = "medium"
    escalation_policy: Id | None = None


TargetKind = Literal["user", "schedule", "team_channel", "slack", "pagerduty", "pager", "ilert",
                     "webhook"]  # fmt: skip
# a Slack channel by name (``#name`` or ``name``) or by id (``C0123ABCD``)
_SLACK_CHANNEL = re.compile(r"^(#?[a-z0-9][a-z0-9_\-]{0,79}|[CGD][A-Z0-9]{6,20})$")


class EscalationTarget(_Strict):
    """Who or what a level pages. ``user``, ``schedule`` and ``team_channel`` name entries
    of this config; ``slack`` names a channel; ``pagerduty`` (or ``pager``), ``ilert`` and
    ``webhook`` name an alias whose key or URL the notifier reads from its environment
    (``PAGERDUTY_ROUTING_KEYS``, ``ILERT_API_KEYS``, ``TOCSIN_WEBHOOK_URLS``), so no
    secret is ever in the config."""

    kind: TargetKind
    ref: str = Field(min_length=1, max_length=80)

    @model_validator(mode="after")
    def _ref_fits_kind(self) -> EscalationTarget:
        if self.kind == "slack":
            if not _SLACK_CHANNEL.fullmatch(self.ref):
                raise ValueError(f"ref: {self.ref!r} is not a Slack channel (#name or an id "
                                 "such as C0123ABCD)")  # fmt: skip
        elif not _ID.fullmatch(self.ref) or len(self.ref) > 64:
            raise ValueError(f"ref: {self.ref!r} is not an id of {self.kind} (lowercase letters, "
                             "digits, '_', '.', '-'; at most 64)")  # fmt: skip
        return self


class EscalationLevel(_Strict):
    targets: list[EscalationTarget] = Field(min_length=1)
    timeout: Duration = Field(default=timedelta(minutes=15), gt=timedelta(0))


class EscalationPolicy(_Strict):
    id: Id
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)
    round_robin: bool = False


class Layer(_Strict):
    """A rotation: `users` take turns of `length`, handing off at `handoff` local time."""

    users: list[Id] = Field(min_length=1)
    length: Duration = Field(default=timedelta(days=7), ge=timedelta(hours=1))
    handoff: time = time(9, 0)
    start: date


class Override(_Strict):
    user: Id
    start: Timestamp
    end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end: an override must end after it starts")
        return self


class Schedule(_Strict):
    id: Id
    timezone: str = "UTC"
    layers: list[Layer] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> Schedule:
        spans = sorted((o.start, o.end, o.user) for o in self.overrides)
        for (s1, e1, u1), (s2, _, u2) in pairwise(spans):
            if s2 < e1:
                raise ValueError(f"overrides: {u1} ({s1}..{e1}) overlaps {u2} (from {s2})")
        return self


class Grouping(_Strict):
    group_by: list[LabelKey] = Field(default_factory=lambda: ["alertname", "service"])
    group_wait: Duration = timedelta(seconds=30)
    group_wait_critical: Duration = timedelta(0)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)
    reopen_window: Duration = timedelta(minutes=30)
    # an alert that changes state flap_threshold times within flap_window is flapping
    flap_window: Duration = Field(default=timedelta(minutes=10), gt=timedelta(0))
    flap_threshold: int = Field(default=6, ge=2, le=64)


class Route(_Strict):
    matchers: list[Matcher] = Field(default_factory=list)
    service: Id | None = None
    team: Id | None = None
    escalation_policy: Id | None = None
    severity: Severity | None = None
    group_by: list[LabelKey] | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = Field(default_factory=list)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _satisfiable(self) -> Route:
        for i, m in enumerate(self.matchers):
            if m.op in ("=~", "!~"):
                try:
                    re.compile(m.value)
                except re.error as exc:
                    raise ValueError(f"matchers[{i}]: bad regex {m.value!r}: {exc}") from exc
        for i, child in enumerate(self.routes[:-1]):
            if not child.matchers and not child.continue_:
                raise ValueError(
                    f"routes[{i + 1}]: never matches: routes[{i}] has no matchers and no "
                    "`continue`, so it takes every alert first"
                )
        equal: dict[str, str] = {}
        for m in self.matchers:
            if m.op == "=":
                if m.label in equal and equal[m.label] != m.value:
                    raise ValueError(
                        f"matchers: {m.label} cannot equal both "
                        f"{equal[m.label]!r} and {m.value!r}: the route never matches"
                    )
                equal[m.label] = m.value
        for m in self.matchers:
            if m.op == "!=" and equal.get(m.label) == m.value:
                raise ValueError(
                    f"matchers: {m.label}={m.value!r} and {m.label}!={m.value!r}: "
                    "the route never matches"
                )
        return self


class Inhibition(_Strict):
    source: list[Matcher] = Field(min_length=1)
    target: list[Matcher] = Field(min_length=1)
    equal: list[LabelKey] = Field(default_factory=list)


class MaintenanceWindow(_Strict):
    matchers: list[Matcher] = Field(min_length=1)
    start: Timestamp
    end: Timestamp
    comment: ShortText = ""


Role = Literal["viewer", "responder", "admin", "provider"]


class ApiToken(_Strict):
    """One API token of a user: only its SHA-256 digest is kept (`tocsin token new` makes
    a token and prints the line to add). viewer reads; responder also acts on incidents,
    silences and overrides; admin may do everything in its tenant; provider (only in the
    provider's own configuration) may act across tenants."""

    user: Id
    role: Role = "viewer"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: Tenant = "default"
    name: ShortText = ""


def _default_ack_sla() -> dict[str, timedelta]:
    return {"P1": timedelta(minutes=5), "P2": timedelta(minutes=15), "P3": timedelta(hours=1),
            "P4": timedelta(hours=4), "P5": timedelta(hours=24)}  # fmt: skip


class Config(_Strict):
    # set by the installation loader from the directory a tenant's files are in
    tenant: Tenant = "default"
    users: list[User] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    grouping: Grouping = Field(default_factory=Grouping)
    route: Route = Field(default_factory=Route)
    inhibitions: list[Inhibition] = Field(default_factory=list)
    silences: list[SilenceSpec] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    heartbeats: list[Heartbeat] = Field(default_factory=list)
    api_tokens: list[ApiToken] = Field(default_factory=list)
    # the credentials the gateway knows this tenant's requests by (digests only)
    intake: Intake = Field(default_factory=Intake)
    # how soon an incident of each priority must be acknowledged (reports count breaches)
    ack_sla: dict[Priority, Duration] = Field(default_factory=_default_ack_sla)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _references(self) -> Config:
        users = _ids("users", self.users)
        for i, tok in enumerate(self.api_tokens):
            _known(tok.user, users, f"api_tokens[{i}]: unknown user")
            if self.tenant != "default" and tok.tenant != self.tenant:
                raise ValueError(f"api_tokens[{i}]: tenant {tok.tenant!r} is not this "
                                 f"configuration's tenant {self.tenant!r}")  # fmt: skip
            if self.tenant != "default" and tok.role == "provider":
                raise ValueError(f"api_tokens[{i}]: role 'provider' belongs in the provider's "
                                 "own configuration, not a tenant's")  # fmt: skip
        if len({t.sha256 for t in self.api_tokens}) != len(self.api_tokens):
            raise ValueError("api_tokens: the same token is listed twice")
        teams = _ids("teams", self.teams)
        policies = _ids("escalation_policies", self.escalation_policies)
        schedules = _ids("schedules", self.schedules)
        _ids("services", self.services)
        _names("heartbeats", [h.name for h in self.heartbeats])
        for i, t in enumerate(self.teams):
            for u in [*t.members, *t.responders]:
                _known(u, users, f"teams[{i}] ({t.id}): unknown user")
        for i, s in enumerate(self.services):
            _known(s.team, teams, f"services[{i}] ({s.id}): unknown team")
            if s.escalation_policy:
                _known(s.escalation_policy, policies, f"services[{i}] ({s.id}): unknown policy")
        for i, sch in enumerate(self.schedules):
            for j, layer in enumerate(sch.layers):
                for u in layer.users:
                    _known(u, users, f"schedules[{i}] ({sch.id}).layers[{j}]: unknown user")
            for j, o in enumerate(sch.overrides):
                _known(o.user, users, f"schedules[{i}] ({sch.id}).overrides[{j}]: unknown user")
        kinds = {"user": users, "schedule": schedules, "team_channel": teams}
        for i, p in enumerate(self.escalation_policies):
            for j, level in enumerate(p.levels):
                for k, target in enumerate(level.targets):
                    if target.kind in kinds:
                        _known(
                            target.ref,
                            kinds[target.kind],
                            f"escalation_policies[{i}] ({p.id}).levels[{j}].targets[{k}]: "
                            f"unknown {target.kind}",
                        )
        _check_route(self.route, "route", teams, policies, {s.id for s in self.services})
        return self

    def user(self, uid: str) -> User | None:
        return next((u for u in self.users if u.id == uid), None)

    def team(self, tid: str) -> Team | None:
        return next((t for t in self.teams if t.id == tid), None)

    def service(self, sid: str) -> Service | None:
        return next((s for s in self.services if s.id == sid), None)

    def policy(self, pid: str) -> EscalationPolicy | None:
        return next((p for p in self.escalation_policies if p.id == pid), None)

    def schedule(self, sid: str) -> Schedule | None:
        return next((s for s in self.schedules if s.id == sid), None)

    def heartbeat(self, name: str) -> Heartbeat | None:
        return next((h for h in self.heartbeats if h.name == name), None)


def _ids(
    kind: str,
    items: list[User] | list[Team] | list[Service] | list[EscalationPolicy] | list[Schedule],
) -> set[str]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{kind}: duplicate id {item.id!r}")
        seen.add(item.id)
    return seen


def _names(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{kind}[{i}]: duplicate name {name!r}")
        seen.add(name)


def _known(ref: str, known: set[str], where: str) -> None:
    if ref not in known:
        raise ValueError(f"{where} {ref!r}")


def _check_route(
    r: Route, path: str, teams: set[str], policies: set[str], services: set[str]
) -> None:
    if r.team:
        _known(r.team, teams, f"{path}: unknown team")
    if r.escalation_policy:
        _known(r.escalation_policy, policies, f"{path}: unknown escalation policy")
    if r.service:
        _known(r.service, services, f"{path}: unknown service")
    for i, child in enumerate(r.routes):
        _check_route(child, f"{path}.routes[{i}]", teams, policies, services)
