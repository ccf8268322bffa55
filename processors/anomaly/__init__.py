"""Online anomaly detection: one calibrated, debounced detector per series."""

from processors.anomaly.series import AnomalySeries, AnomalyVerdict

__all__ = ["AnomalySeries", "AnomalyVerdict"]
