"""What responders change on status pages: updates about incidents, overrides of a
component's state and scheduled maintenance. A `Command` of action `status` carries one
`StatusChange` through Kafka; the projector writes it to the store the pages read."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.types import Name, ShortText, Text, Timestamp

Audience = Literal["public", "private", "internal"]
AUDIENCES: tuple[Audience, ...] = ("public", "private", "internal")
UpdateStatus = Literal["investigating", "identified", "monitoring", "resolved"]
ComponentState = Literal["operational", "degraded", "partial_outage", "major_outage",
                         "maintenance"]  # fmt: skip
# worst last: the page's overall state is the worst of its components'
STATES: tuple[ComponentState, ...] = ("operational", "maintenance", "degraded", "partial_outage",
                                      "major_outage")  # fmt: skip
STATE_NAMES: dict[str, str] = {"operational": "Operational", "degraded": "Degraded performance",
                               "partial_outage": "Partial outage",
                               "major_outage": "Major outage",
                               "maintenance": "Under maintenance"}  # fmt: skip
_ID = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- what responders send ---------------------------------------------------------------


def _audiences(v: list[Audience]) -> list[Audience]:
    if len(set(v)) != len(v):
        raise ValueError("audiences: listed twice")
    return [a for a in AUDIENCES if a in v]


class UpdateSpec(_Strict):
    """An update about an incident: where it stands and what the readers should know."""

    incident_id: Name
    status: UpdateStatus
    message: Text = Field(min_length=1)
    audiences: list[Audience] = Field(min_length=1, max_length=3)
    # the incident's name on pages (its own title may name hosts; it is never shown)
    title: ShortText = ""
    # components affected as the responder says (empty: those its service and labels map to)
    components: list[Id] = Field(default_factory=list, max_length=64)
    author: Name

    _sorted = field_validator("audiences")(_audiences)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("an update needs a message")
        return v


class OverrideSpec(_Strict):
    """A responder sets a component's state until cleared (`state: null` clears it)."""

    component: Id
    state: ComponentState | None
    reason: ShortText = ""
    author: Name


class MaintenanceSpec(_Strict):
    """Scheduled maintenance: its components show `maintenance` between its times, and
    the pages of its audiences announce it ahead of time."""

    components: list[Id] = Field(min_length=1, max_length=64)
    starts_at: Timestamp
    ends_at: Timestamp
    title: ShortText = Field(min_length=1)
    message: Text = ""
    audiences: list[Audience] = Field(min_length=1, max_length=3)
    author: Name

    _sorted = field_validator("audiences")(_audiences)

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceSpec:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: maintenance must end after it starts")
        return self


class CancelSpec(_Strict):
    """Scheduled maintenance called off: it leaves the pages (the command id that made it)."""

    maintenance_id: Name
    author: Name


KINDS = ("update", "override", "maintenance", "cancel")


class StatusChange(_Strict):
    """One status-page change; exactly the field of its kind is set."""

    kind: Literal["update", "override", "maintenance", "cancel"]
    update: UpdateSpec | None = None
    override: OverrideSpec | None = None
    maintenance: MaintenanceSpec | None = None
    cancel: CancelSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> StatusChange:
        given = [k for k in KINDS if getattr(self, k)]
        if given != [self.kind]:
            raise ValueError(f"{self.kind}: a change of kind {self.kind!r} carries exactly "
                             f"that field (got {', '.join(given) or 'none'})")  # fmt: skip
        return self
