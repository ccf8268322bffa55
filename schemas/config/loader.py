"""Load the configuration from YAML files; errors name the file, the path, the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.config.models import Config
from schemas.errors import ConfigError

_LISTS = ("users", "teams", "services", "escalation_policies", "schedules", "inhibitions",
          "silences", "maintenance")  # fmt: skip


def load_config(paths: list[Path]) -> Config:
    """Merge YAML files (or directories of them): lists concatenate, mappings replace."""
    merged: dict[str, Any] = {}
    sources: list[str] = []
    for path in paths:
        for file in sorted(path.glob("*.y*ml")) if path.is_dir() else [path]:
            sources.append(str(file))
            try:
                data = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{file}: cannot read YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{file}: expected a mapping at the top level")
            for key, value in data.items():
                if key in _LISTS and isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
                else:
                    merged[key] = value
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        where = ", ".join(sources)
        lines = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {loc + ': ' if loc else ''}{msg}")
        raise ConfigError("\n".join(lines)) from exc
