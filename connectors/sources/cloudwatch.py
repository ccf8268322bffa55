"""CloudWatch alarm state changes (the JSON CloudWatch publishes to SNS) as alerts.

``ALARM`` is firing, ``OK`` is resolved, ``INSUFFICIENT_DATA`` is firing too: CloudWatch
sends it only to topics the alarm names in its ``InsufficientDataActions``, and missing
data is what a dead host or a stopped exporter looks like. The state is an annotation,
never a label, so an alarm that goes from ALARM to INSUFFICIENT_DATA stays one alert in
one incident.

The fingerprint is the alarm's ARN (account, region, name): one alert per alarm. The
event id is SNS's MessageId, which SNS keeps when it delivers a message again, so a
redelivery is the same event. CloudWatch has no severity: ``severity=<level>`` (or
``severity: <level>``) in the alarm's description sets it, warning otherwise.
Metric-math and composite alarms have no single metric: their labels say what they
have (the expression's ids, the alarm rule).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.alerts import Alert, Severity
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError
from schemas.types import MAX_LABEL_VALUE

_SEVERITY = re.compile(r"\bseverity\s*[=:]\s*(critical|error|warning|info)\b", re.IGNORECASE)
# "... 1 datapoint [95.2 (01/01/26 00:00:00)] was greater than the threshold (80.0)."
_DATAPOINT = re.compile(r"\[(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?) \(")
_REGION = re.compile(r"arn:aws(?:-[a-z]+)*:cloudwatch:([a-z0-9\-]+):")
_DIMENSIONS = 8


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=255)
    value: str = Field(max_length=MAX_LABEL_VALUE)


class _MetricStat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Id: str | None = Field(default=None, max_length=255)
    Expression: str | None = Field(default=None, max_length=2048)


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="ignore")

    MetricName: str | None = Field(default=None, max_length=255)
    Namespace: str | None = Field(default=None, max_length=255)
    Statistic: str | None = Field(default=None, max_length=64)
    ExtendedStatistic: str | None = Field(default=None, max_length=64)
    Dimensions: list[_Dimension] = Field(default_factory=list, max_length=64)
    Period: int | None = None
    EvaluationPeriods: int | None = None
    ComparisonOperator: str | None = Field(default=None, max_length=64)
    Threshold: float | None = Field(default=None, allow_inf_nan=False)
    Metrics: list[_MetricStat] = Field(default_factory=list, max_length=64)


class CloudWatchAlarm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    AlarmName: str = Field(min_length=1, max_length=255)
    AlarmDescription: str | None = Field(default=None, max_length=4096)
    AWSAccountId: str | None = Field(default=None, max_length=32)
    NewStateValue: Literal["ALARM", "OK", "INSUFFICIENT_DATA"]
    NewStateReason: str = Field(default="", max_length=8192)
    StateChangeTime: datetime
    Region: str | None = Field(default=None, max_length=128)
    AlarmArn: str | None = Field(default=None, max_length=1024)
    OldStateValue: str | None = Field(default=None, max_length=32)
    Trigger: _Trigger | None = None
    AlarmRule: str | None = Field(default=None, max_length=10240)


def decode_alarm(message: str | bytes, message_id: str, now: datetime) -> Alert:
    """The alert an SNS Notification's ``Message`` means, or DecodeError naming the field."""
    try:
        alarm = CloudWatchAlarm.model_validate_json(message)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error("CloudWatchAlarm", exc), reason="validation",
                          model="CloudWatchAlarm") from exc  # fmt: skip
    if alarm.StateChangeTime.tzinfo is None:
        raise DecodeError("CloudWatchAlarm.StateChangeTime: has no time zone",
                          reason="validation", model="CloudWatchAlarm")  # fmt: skip
    try:
        return _alert(alarm, message_id, now)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error("CloudWatchAlarm", exc), reason="validation",
                          model="CloudWatchAlarm") from exc  # fmt: skip


def _alert(alarm: CloudWatchAlarm, message_id: str, now: datetime) -> Alert:
    at = min(alarm.StateChangeTime, now)
    region = _region(alarm)
    identity = alarm.AlarmArn or f"{alarm.AWSAccountId}:{region}:{alarm.AlarmName}"
    t = alarm.Trigger
    labels = {"alertname": alarm.AlarmName, "source": "cloudwatch"}
    for name, value in (("region", region), ("account", alarm.AWSAccountId),
                        ("namespace", t.Namespace if t else None),
                        ("metric", t.MetricName if t else None)):  # fmt: skip
        if value:
            labels[name] = value[:MAX_LABEL_VALUE]
    for d in (t.Dimensions if t else [])[:_DIMENSIONS]:
        key = re.sub(r"[^a-zA-Z0-9_]", "_", d.name)[:100] or "dimension"
        labels[f"dimension_{key}"] = d.value
    notes = _annotations(alarm, region)
    firing = alarm.NewStateValue != "OK"
    said = _SEVERITY.search(alarm.AlarmDescription or "")
    severity: Severity = said[1].lower() if said else "warning"  # type: ignore[assignment]
    point = _DATAPOINT.search(alarm.NewStateReason)
    fields: dict[str, Any] = {
        "event_id": hashlib.sha256(f"sns\x00{message_id}".encode()).hexdigest()[:32],
        "fingerprint": "cloudwatch:" + hashlib.sha256(identity.encode()).hexdigest()[:32],
        "status": "firing" if firing else "resolved",
        "rule": alarm.AlarmName,
        "source": "cloudwatch",
        "severity": severity,
        "labels": labels,
        "annotations": notes,
        "summary": f"{alarm.AlarmName}: {alarm.NewStateReason}"[:8000],
        "runbook_url": None,
        "value": _finite(point[1]) if point else None,
        "threshold": t.Threshold if t else None,
        "starts_at": at,
        "ends_at": None if firing else at,
    }
    return Alert.model_validate(fields)


def _annotations(alarm: CloudWatchAlarm, region: str | None) -> dict[str, str]:
    t = alarm.Trigger
    notes = {"cloudwatch_state": alarm.NewStateValue, "reason": alarm.NewStateReason[:8000],
             "state_change_time": alarm.StateChangeTime.isoformat()}  # fmt: skip
    optional = {
        "description": alarm.AlarmDescription,
        "previous_state": alarm.OldStateValue,
        "alarm_arn": alarm.AlarmArn,
        "alarm_rule": alarm.AlarmRule,
        "comparison": t.ComparisonOperator if t else None,
        "statistic": (t.Statistic or t.ExtendedStatistic) if t else None,
        "period_s": str(t.Period) if t and t.Period is not None else None,
        "evaluation_periods": str(t.EvaluationPeriods) if t and t.EvaluationPeriods else None,
        "expressions": "; ".join(f"{m.Id}={m.Expression}" for m in t.Metrics if m.Expression)
        if t and t.Metrics else None,
    }  # fmt: skip
    notes.update({k: v[:8000] for k, v in optional.items() if v})
    if region:
        notes["console_url"] = (f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
                                f"#alarmsV2:alarm/{quote(alarm.AlarmName, safe='')}")  # fmt: skip
    return notes


def _region(alarm: CloudWatchAlarm) -> str | None:
    """The region code from the alarm's ARN (``Region`` is a display name such as
    "US East (N. Virginia)")."""
    match = _REGION.match(alarm.AlarmArn or "")
    return match[1] if match else alarm.Region


def _finite(text: str) -> float | None:
    number = float(text)
    return number if abs(number) <= 1e300 else None


def example_alarm(state: str = "ALARM", name: str = "checkout-5xx-high") -> dict[str, Any]:
    """A CloudWatch alarm message as AWS documents it (docs and tests)."""
    return {
        "AlarmName": name,
        "AlarmDescription": "5xx on the checkout load balancer. severity=critical",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-01-01T00:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [42.0 (01/01/26 00:05:00)] was "
                          "greater than the threshold (10.0).",
        "StateChangeTime": "2026-01-01T00:05:30.123+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "OldStateValue": "OK" if state == "ALARM" else "ALARM",
        "OKActions": [], "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:tocsin"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB",
            "StatisticType": "Statistic", "Statistic": "SUM", "Unit": None,
            "Dimensions": [{"value": "app/checkout/50dc6c495c0c9188", "name": "LoadBalancer"}],
            "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10.0,
            "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": "",
        },
    }  # fmt: skip
