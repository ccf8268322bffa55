"""The `anomaly:` block of a rule: which online detector scores the series, and how its
calibrated score becomes an alert."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.types import Duration


class AnomalySpec(BaseModel):
    """One configuration serves every series: the score is calibrated to mean the same
    thing everywhere (a tail probability), so `threshold` does not depend on the metric."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detector: Literal["likelihood", "holt_winters"] = Field(
        default="likelihood",
        description="likelihood: seasonal EW level model (fast, best on NAB); "
        "holt_winters: river's Holt-Winters forecast residuals",
    )
    # score = D / (D + 7) with D = -log10(tail probability), rated per unit of time: 0.3 is
    # a 1-in-1,000 surprise on a 5-minute series (about once in 3.5 days of pure noise),
    # 1 in 5,000 on a 1-minute one: the same pages per day whatever the sampling step
    threshold: float = Field(default=0.3, gt=0.0, lt=1.0)
    # weekly: hour of week, starting from the hour of day (see processors/anomaly/likelihood.py)
    season: Literal["none", "daily", "weekly"] = "weekly"
    warm_up: int = Field(default=150, ge=0, le=100_000, description="points scored 0")
    debounce_k: int = Field(default=2, ge=1, le=100)
    # fire when k of the last n points are rare and one of them opened a new episode
    # (processors/anomaly/series.py): two of ten was chosen out of sample on NAB among rules
    # that page a series at most once a month on pure noise (docs/anomaly-evaluation.md)
    debounce_n: int = Field(default=10, ge=1, le=100)
    resolve_after: int = Field(default=10, ge=1, le=10_000, description="quiet points")
    idle_evict: Duration | None = None

    @model_validator(mode="after")
    def _k_of_n(self) -> AnomalySpec:
        if self.debounce_k > self.debounce_n:
            raise ValueError("debounce_k: must not exceed debounce_n")
        return self
