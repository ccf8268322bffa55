"""Rule configuration: what a processor evaluates, as validated YAML.

A rule selects a signal (metric samples or log records), groups it by labels,
aggregates it over an event-time window and compares the result with a
threshold, Prometheus-style (`for:` holds continuously before firing).
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.alerts import Severity
from schemas.anomaly import AnomalySpec
from schemas.commands import Matcher
from schemas.errors import ConfigError
from schemas.types import Duration, LabelKey, MetricName, Name, ShortText, Tenant, Text

Aggregation = Literal[
    "avg", "min", "max", "sum", "count", "rate", "ratio", "quantile", "last", "absent"
]
Comparison = Literal[">", ">=", "<", "<="]
StatusClass = Literal["1xx", "2xx", "3xx", "4xx", "5xx"]

_NAME = r"^[a-z][a-z0-9_\-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricSignal(_Strict):
    """Metric samples by name and label matchers; `counter: true` turns them into increases."""

    kind: Literal["metric"] = "metric"
    metric: MetricName
    matchers: list[Matcher] = Field(default_factory=list, max_length=32)
    counter: bool = False


class LogFilter(_Strict):
    """Which log records count (for `ratio`'s numerator, or to narrow a log signal)."""

    status_class: list[StatusClass] = Field(default_factory=list)
    status_min: int | None = Field(default=None, ge=100, le=599)
    status_max: int | None = Field(default=None, ge=100, le=599)
    matchers: list[Matcher] = Field(default_factory=list, max_length=32)


class LogSignal(_Strict):
    """Log records; the value is `duration_ms` (latency rules) or 1 per record (counts)."""

    kind: Literal["log"] = "log"
    matchers: list[Matcher] = Field(default_factory=list, max_length=32)
    filter: LogFilter | None = None
    value: Literal["count", "duration_ms"] = "count"


Signal = Annotated[MetricSignal | LogSignal, Field(discriminator="kind")]


class Window(_Strict):
    """Event-time window: tumbling (step = size) or sliding (step < size)."""

    size: Duration = Field(gt=timedelta(0), le=timedelta(days=1))
    step: Duration | None = Field(default=None, gt=timedelta(0))

    @model_validator(mode="after")
    def _step_fits(self) -> Window:
        step = self.step or self.size
        if step > self.size:
            raise ValueError("step: must not exceed size")
        ratio = self.size / step
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("step: size must be a whole multiple of step")
        if round(ratio) > 60:
            raise ValueError("step: at most 60 overlapping windows (size/step <= 60)")
        return self

    @property
    def step_or_size(self) -> timedelta:
        return self.step or self.size


class Condition(_Strict):
    """`value <op> threshold`, held for `for` before firing.

    Hysteresis: once firing, the alert resolves only when the value crosses
    `resolve_threshold` (default: the threshold itself), and stays firing for
    `keep_firing_for` after the condition stops holding.
    """

    op: Comparison = ">"
    threshold: float = Field(allow_inf_nan=False)
    resolve_threshold: float | None = Field(default=None, allow_inf_nan=False)
    for_: Duration = Field(default=timedelta(0), alias="for", ge=timedelta(0))
    keep_firing_for: Duration = Field(default=timedelta(0), ge=timedelta(0))

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _hysteresis_direction(self) -> Condition:
        r = self.resolve_threshold
        if r is None:
            return self
        if self.op in (">", ">=") and r > self.threshold:
            raise ValueError("resolve_threshold: must be <= threshold for a '>' condition")
        if self.op in ("<", "<=") and r < self.threshold:
            raise ValueError("resolve_threshold: must be >= threshold for a '<' condition")
        return self


class Rule(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=_NAME)]
    description: Text = ""
    signal: Signal
    aggregation: Aggregation = "avg"
    quantile: float | None = Field(default=None, gt=0, lt=1)
    numerator: LogFilter | None = None
    window: Window | None = None
    absent_for: Duration | None = Field(default=None, gt=timedelta(0))
    condition: Condition | None = None
    group_by: list[LabelKey] = Field(default_factory=list, max_length=16)
    max_series: int = Field(default=10_000, ge=1, le=1_000_000)
    # fewer samples than this in a window: no value (2 errors in 30 requests is noise)
    min_samples: int = Field(default=1, ge=1, le=1_000_000)
    severity: Severity = "warning"
    summary: ShortText = "{rule} on {labels}: {value} {op} {threshold}"
    runbook_url: ShortText | None = None
    labels: dict[LabelKey, Name] = Field(default_factory=dict, max_length=16)
    anomaly: AnomalySpec | None = None
    # fire as soon as the window's value is sure to cross (a max above the threshold, a
    # count past it), before the window ends
    early: bool = False
    # the tenant whose samples alone this rule sees (None: the shared pack, every
    # tenant's); set from the directory a tenant's rule file is in, never written in it,
    # and left out of the rule's serialised form (its state signature)
    tenant: Tenant | None = Field(default=None, exclude=True)

    @field_validator("group_by")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("group_by: labels must be unique")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        agg = self.aggregation
        # a field the aggregation does not read would be ignored without a word
        for field, reader in (("quantile", "quantile"), ("numerator", "ratio")):
            if getattr(self, field) is not None and agg != reader:
                raise ValueError(f"{field}: only for aggregation {reader!r} (not {agg!r})")
        if self.anomaly is not None:
            if not isinstance(self.signal, MetricSignal):
                raise ValueError("anomaly: anomaly detection scores metric signals")
            if self.condition is not None:
                raise ValueError("anomaly: a rule has either an anomaly block or a condition")
            if self.early:
                raise ValueError("early: a rule with an anomaly block has no threshold to cross")
            if self.absent_for is not None:
                raise ValueError("absent_for: a series that stops is an `absent` rule's to "
                                 "notice; write one beside the anomaly rule")  # fmt: skip
            if self.window is None and "aggregation" in self.model_fields_set:
                raise ValueError(f"window: required for aggregation {agg!r} (the detector "
                                 "then scores the group's value per window)")  # fmt: skip
            if agg in ("absent", "ratio"):
                raise ValueError(f"aggregation: {agg!r} is not a value an anomaly rule can score")
        elif agg == "absent":
            if self.absent_for is None:
                raise ValueError("absent_for: required for aggregation 'absent'")
            # an absence has no value to aggregate or compare: a window or a condition
            # would be ignored, or worse
            for field in ("window", "condition"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field}: aggregation 'absent' takes absent_for only")
            if self.early:
                raise ValueError("early: aggregation 'absent' has no threshold to cross")
        else:
            if self.absent_for is not None:
                # it would run the absence check on a threshold rule's series, which then
                # fire as absent with a made-up value
                raise ValueError(f"absent_for: only for aggregation 'absent' (not {agg!r}); "
                                 "write an absent rule beside this one")  # fmt: skip
            if self.window is None:
                raise ValueError(f"window: required for aggregation {agg!r}")
            if self.condition is None:
                raise ValueError(f"condition: required for aggregation {agg!r}")
            if self.early:
                _check_early(agg, self.condition)
        # what every kind of rule must satisfy
        if agg == "quantile" and self.quantile is None:
            raise ValueError("quantile: required for aggregation 'quantile' (e.g. 0.95)")
        if agg == "ratio" and (not isinstance(self.signal, LogSignal) or self.numerator is None):
            raise ValueError("numerator: 'ratio' needs a log signal and a numerator filter")
        if agg == "rate" and isinstance(self.signal, MetricSignal) and not self.signal.counter:
            raise ValueError("signal.counter: 'rate' needs a counter signal (counter: true)")
        for m in [*_matchers(self)]:
            if m.op in ("=~", "!~"):
                try:
                    re.compile(m.value)
                except re.error as exc:
                    raise ValueError(f"matchers: invalid regex {m.value!r}: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _severity_label_agrees(self) -> Rule:
        # a `severity` label is what inhibitions match on: it must say what pages say
        label = self.labels.get("severity")
        if label is not None and label != self.severity:
            raise ValueError(f"labels.severity: {label!r} differs from the rule's severity "
                             f"{self.severity!r}")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _placeholders_exist(self) -> Rule:
        """A placeholder the alert cannot fill renders as nothing ("CPU 94% on "), so a
        typo such as {hots} would reach a page unnoticed: refuse it when the rule loads."""
        labels = sorted({*self.group_by, *self.labels, "alertname"})
        fields = [*SUMMARY_FIELDS, *(ANOMALY_FIELDS if self.anomaly else ())]
        _check_template("summary", self.summary, labels, fields)
        if self.runbook_url:
            _check_template("runbook_url", self.runbook_url, labels, ["labels"])
        return self


# what a summary can name besides the alert's labels (processors/rules/alerts.py fills them)
SUMMARY_FIELDS = ("value", "threshold", "op", "rule", "labels")
ANOMALY_FIELDS = ("expected", "score", "rarity")


def _check_template(where: str, template: str, labels: list[str], fields: list[str]) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{where}: not a valid template ({exc}); write {{{{ and }}}} "
                         "for a literal brace") from exc  # fmt: skip
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if name in labels or name in fields:
            continue
        if name in ANOMALY_FIELDS:
            raise ValueError(f"{where}: placeholder {{{field}}} is filled for anomaly rules "
                             "only")  # fmt: skip
        group = ", ".join(labels)
        raise ValueError(f"{where}: placeholder {{{field}}} is not a label of the rule's "
                         f"group ({group}) nor one of {', '.join(fields)}")  # fmt: skip


def _check_early(agg: str, c: Condition) -> None:
    # only an aggregate that can only move one way within a window is decided by part of
    # it: a max only grows, a min only shrinks, a count only grows
    if (agg, c.op) not in {(a, op) for a in ("max", "count") for op in (">", ">=")} | {
        ("min", "<"),
        ("min", "<="),
    }:
        raise ValueError("early: only `max` or `count` above, or `min` below, a threshold is "
                         f"decided before the window ends (not {agg!r} {c.op!r})")  # fmt: skip
    if c.for_ > timedelta(0):
        raise ValueError("early: needs `for: 0` (an early decision is a firing)")


def _matchers(rule: Rule) -> list[Matcher]:
    out = list(rule.signal.matchers)
    if isinstance(rule.signal, LogSignal) and rule.signal.filter:
        out += rule.signal.filter.matchers
    if rule.numerator:
        out += rule.numerator.matchers
    return out


class RuleSettings(_Strict):
    """Processor-wide event-time settings, beside the rules in the same file."""

    allowed_lateness: Duration = Field(default=timedelta(seconds=30), ge=timedelta(0))
    max_future_skew: Duration = Field(default=timedelta(minutes=5), ge=timedelta(0))
    # `series`: a window closes once every live series has passed its end, the lateness
    # kept for series seen out of order; `partition`: only when the newest sample of
    # the partition is `allowed_lateness` past it (docs/processors.md)
    watermark: Literal["series", "partition"] = "series"
    # series (name and labels) one tenant may have in one processor partition: a new
    # series past it goes to the dead-letter topic, so a tenant that floods the processor
    # with series cannot take the memory the other tenants' series need
    max_series_per_tenant: int = Field(default=50_000, ge=1, le=10_000_000)
    # tenants (the provider's included) with samples in one processor partition: records
    # naming more tenants than any installation has (a producer writing to the topics
    # directly, past the gateway that admits configured tenants only) go to the
    # dead-letter topic instead of growing an engine each
    max_tenants_per_partition: int = Field(default=10_000, ge=1, le=1_000_000)


class RuleFile(_Strict):
    settings: RuleSettings = Field(default_factory=RuleSettings)
    rules: list[Rule] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rules: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return self


def load_rule_files(paths: list[Path]) -> RuleFile:
    """Load and merge rule files; ConfigError names the file, the rule and the field."""
    rules: list[Rule] = []
    settings: RuleSettings | None = None
    errors: list[str] = []
    for path in paths:
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                parsed = _load_one(file)
            except ConfigError as exc:
                errors.append(str(exc))
                continue
            rules += parsed.rules
            settings = settings or parsed.settings
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        return RuleFile(settings=settings or RuleSettings(), rules=rules)
    except ValidationError as exc:
        raise ConfigError(_describe(", ".join(str(p) for p in paths), {}, exc)) from exc


def _load_one(file: Path) -> RuleFile:
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'rules' list")
    for i, rule in enumerate(data.get("rules") or []):
        if isinstance(rule, dict) and "tenant" in rule:
            raise ConfigError(f"{file}: rule {rule.get('name') or '#' + str(i)} field tenant: "
                              "not written in a rule file (a tenant's rules are the files "
                              "of tenants/<id>/rules/)")  # fmt: skip
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(str(file), data, exc)) from exc


def _describe(file: str, data: dict[str, object], exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = data.get("rules")
            name = None
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                name = rules[loc[1]].get("name")
            field = ".".join(str(p) for p in loc[2:] if not str(p).startswith("function-"))
            where = f"rule {name or '#' + str(loc[1])!s}" + (f" field {field}" if field else "")
        # pydantic prefixes messages raised in validators with "Value error, ": noise here
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{file}: {where}: {msg}")
    return "\n".join(lines)
