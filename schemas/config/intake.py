"""A tenant's intake credentials: what the gateway knows a request of this tenant by.

Secrets never appear here, only their SHA-256 digests (``tocsin token new`` makes a
token and its digest, as for ``api_tokens``). A bearer token also serves as the basic
auth password of Alertmanager and Grafana contact points. SNS topic ARNs, Slack team
ids and Slack channels are not secrets: they are listed as they are. Each credential
belongs to one tenant; the installation refuses one listed by two (see ``owners``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import ConfigError
from schemas.types import ShortText

Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# an ARN, ``*`` standing for any run of characters within one of its parts
SnsTopic = Annotated[str, Field(min_length=12, max_length=256, pattern=r"^arn:[A-Za-z0-9*:_./-]+$")]
SlackTeam = Annotated[str, Field(pattern=r"^[TE][A-Z0-9]{4,20}$")]
SlackChannel = Annotated[str, Field(pattern=r"^[CGD][A-Z0-9]{4,20}$")]
IntakeRoute = Literal["zabbix", "checkmk"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IntakeToken(_Strict):
    """A bearer token of this tenant: every intake route, or only ``only``'s own route
    (a Zabbix media type's or a Checkmk plugin's token)."""

    sha256: Digest
    name: ShortText = ""
    only: IntakeRoute | None = None


class Quota(_Strict):
    """What this tenant may send through one gateway before it is answered 429: requests
    per second and items (samples, log records, alerts) per second, sustained, and the
    burst above them. Unset: the gateway's defaults (``--tenant-rate``, ``--tenant-items``)."""

    requests_per_s: float | None = Field(default=None, ge=0)
    items_per_s: float | None = Field(default=None, ge=0)
    # seconds of the rate that may come at once
    burst_s: float | None = Field(default=None, gt=0, le=3600)


class Intake(_Strict):
    tokens: list[IntakeToken] = Field(default_factory=list)
    pagerduty_keys: list[Digest] = Field(default_factory=list)  # SHA-256 of routing keys
    sns_topics: list[SnsTopic] = Field(default_factory=list)
    slack_teams: list[SlackTeam] = Field(default_factory=list)
    slack_channels: list[SlackChannel] = Field(default_factory=list)
    quota: Quota = Field(default_factory=Quota)

    @field_validator("tokens")
    @classmethod
    def _distinct_tokens(cls, value: list[IntakeToken]) -> list[IntakeToken]:
        if len({t.sha256 for t in value}) != len(value):
            raise ValueError("the same token is listed twice")
        return value

    def credentials(self) -> Iterable[tuple[str, str]]:
        """(kind, value) of every credential listed: what must belong to one tenant."""
        for t in self.tokens:
            yield "intake.tokens", t.sha256
        for k in self.pagerduty_keys:
            yield "intake.pagerduty_keys", k
        for s in self.sns_topics:
            yield "intake.sns_topics", s
        for team in self.slack_teams:
            yield "intake.slack_teams", team
        for c in self.slack_channels:
            yield "intake.slack_channels", c


def owners(intakes: Mapping[str, Intake]) -> dict[tuple[str, str], str]:
    """Each credential -> its tenant; a credential listed by two tenants is an error naming
    both (a token may be a basic-auth password too: tokens and keys share one space)."""
    found: dict[tuple[str, str], str] = {}
    problems = []
    for tenant in sorted(intakes):
        for kind, value in intakes[tenant].credentials():
            space = "secret" if kind in ("intake.tokens", "intake.pagerduty_keys") else kind
            other = found.setdefault((space, value), tenant)
            if other != tenant:
                place = "the provider's config" if tenant == "default" else f"tenants/{tenant}"
                problems.append(f"{place}: {kind}: {_shown(kind, value)} is listed "
                                f"by tenant {other!r} too; a credential belongs to one "
                                "tenant")  # fmt: skip
    if problems:
        raise ConfigError("\n".join(problems))
    return found


def _shown(kind: str, value: str) -> str:
    return f"sha256 {value[:12]}..." if re.fullmatch(r"[0-9a-f]{64}", value) else repr(value)
