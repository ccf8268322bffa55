"""Status pages: their configuration (`status.yaml` per tenant), the changes responders
make (updates, overrides, scheduled maintenance — carried by a `Command` of action
`status`), and what a page shows.

A page is for one audience: `public` (anyone), `private` (a customer's staff: a token of
the page or a console session of the tenant) or `internal` (the provider's team). An
update names the audiences that see it; a page shows only the updates meant for its
audience, and a public page shows nothing but the fields written for it (a component's
display name, an update's message, the public title) — never an incident's own title,
labels, hosts or values.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.commands import Matcher, Priority
from schemas.status_changes import (
    AUDIENCES,
    STATE_NAMES,
    STATES,
    Audience,
    CancelSpec,
    ComponentState,
    Id,
    MaintenanceSpec,
    OverrideSpec,
    StatusChange,
    UpdateSpec,
    UpdateStatus,
)
from schemas.types import Name, ShortText

__all__ = [
    "AUDIENCES",
    "STATES",
    "STATE_NAMES",
    "Audience",
    "CancelSpec",
    "ComponentState",
    "Id",
    "MaintenanceSpec",
    "OverrideSpec",
    "StatusChange",
    "UpdateSpec",
    "UpdateStatus",
]


def default_priority_states() -> dict[Priority, ComponentState]:
    return {"P1": "major_outage", "P2": "partial_outage", "P3": "degraded", "P4": "degraded",
            "P5": "degraded"}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Component(_Strict):
    """A part of the customer's service as the page names it. It is affected by an open
    incident of one of `services` whose labels match every matcher."""

    id: Id
    name: Name
    group: ShortText = ""
    description: ShortText = ""
    services: list[Id] = Field(min_length=1)
    matchers: list[Matcher] = Field(default_factory=list, max_length=32)


class Page(_Strict):
    id: Id
    audience: Audience
    title: Name
    # the components shown, in order (empty: every component of the file)
    components: list[Id] = Field(default_factory=list)
    # private pages: SHA-256 digests of the tokens its readers give (never the tokens)
    tokens: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tokens_only_private(self) -> Page:
        if self.tokens and self.audience != "private":
            raise ValueError(f"tokens: only a private page takes tokens ({self.id} is "
                             f"{self.audience})")  # fmt: skip
        return self


class StatusConfig(_Strict):
    components: list[Component] = Field(default_factory=list)
    pages: list[Page] = Field(default_factory=list)
    priority_states: dict[Priority, ComponentState] = Field(default_factory=default_priority_states)

    @model_validator(mode="after")
    def _references(self) -> StatusConfig:
        seen: set[str] = set()
        for i, c in enumerate(self.components):
            if c.id in seen:
                raise ValueError(f"components[{i}]: duplicate id {c.id!r}")
            seen.add(c.id)
        pages: set[str] = set()
        for i, p in enumerate(self.pages):
            if p.id in pages:
                raise ValueError(f"pages[{i}]: duplicate id {p.id!r}")
            pages.add(p.id)
            for j, cid in enumerate(p.components):
                if cid not in seen:
                    raise ValueError(f"pages[{i}].components[{j}]: unknown component {cid!r}")
        return self

    def page(self, page_id: str) -> Page | None:
        return next((p for p in self.pages if p.id == page_id), None)

    def shown(self, page: Page) -> list[Component]:
        if not page.components:
            return list(self.components)
        by_id = {c.id: c for c in self.components}
        return [by_id[c] for c in page.components]


# -- what a page shows -------------------------------------------------------------------


class ComponentView(BaseModel):
    id: str
    name: str
    group: str
    description: str
    state: ComponentState
    overridden: bool = False


class Day(BaseModel):
    """One day of a component's history: its worst state and the time it was down."""

    day: date
    state: ComponentState
    down_s: float
    uptime: float


class ComponentHistory(BaseModel):
    id: str
    name: str
    uptime: float
    days: list[Day]


class UpdateView(BaseModel):
    update_id: str
    status: UpdateStatus
    message: str
    at: datetime


class IncidentStory(BaseModel):
    """An incident as a page tells it: its public title, state and updates."""

    incident_id: str
    title: str
    status: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    components: list[str]
    updates: list[UpdateView]


class MaintenanceView(BaseModel):
    maintenance_id: str
    title: str
    message: str
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    state: Literal["scheduled", "in_progress", "completed"]


class PageView(BaseModel):
    tenant: str
    page: str
    audience: Audience
    title: str
    state: ComponentState
    generated_at: datetime
    components: list[ComponentView]
    active: list[IncidentStory]
    maintenance: list[MaintenanceView]
    history: list[ComponentHistory]
    past: list[IncidentStory]


class Subscriber(BaseModel):
    subscriber_id: str
    url: str
    created_at: datetime


# -- API bodies ----------------------------------------------------------------------------


class UpdateBody(_Strict):
    status: UpdateStatus
    message: str = Field(min_length=1, max_length=8192)
    audiences: list[Audience] = Field(min_length=1, max_length=3)
    title: ShortText = ""
    components: list[Id] = Field(default_factory=list, max_length=64)


class StateOverrideBody(_Strict):
    state: ComponentState
    reason: ShortText = ""


class MaintenanceBody(_Strict):
    components: list[Id] = Field(min_length=1, max_length=64)
    starts_at: datetime
    ends_at: datetime
    title: ShortText = Field(min_length=1)
    message: str = Field(default="", max_length=8192)
    audiences: list[Audience] = Field(min_length=1, max_length=3)


class SubscriberBody(_Strict):
    url: str = Field(min_length=1, max_length=2048)
