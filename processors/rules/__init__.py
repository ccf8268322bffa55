"""Window rules: pure evaluation of rule files over metric and log streams."""

from processors.rules.engine import LATE, RuleEngine

__all__ = ["LATE", "RuleEngine"]
