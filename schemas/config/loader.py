"""Load the configuration from YAML files; errors name the file, the path, the problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.config.models import Config
from schemas.errors import ConfigError

_LISTS = ("users", "teams", "services", "escalation_policies", "schedules", "inhibitions",
          "silences", "maintenance", "heartbeats")  # fmt: skip
_ITEM = re.compile(r"^(?P<key>[a-z_]+)\[(?P<index>\d+)\]")


# files beside a tenant's configuration that other loaders own (status pages)
_NOT_CONFIG = frozenset({"status.yaml", "status.yml"})


def config_files(path: Path) -> list[Path]:
    """The configuration files of a path: itself, or a directory's YAML files (not its
    subdirectories, and not the status pages' file beside them)."""
    if not path.is_dir():
        return [path]
    return [f for f in sorted(path.glob("*.y*ml")) if f.name not in _NOT_CONFIG]


def load_config(paths: list[Path], tenant: str = "default") -> Config:
    """Merge YAML files (or directories of them): lists concatenate, mappings replace.

    Every list item remembers the file (and its index there) it came from, so an error
    about `teams[3]` of the merged config names `b.yaml: teams[1]`. A tenant's API tokens
    belong to that tenant unless they say otherwise (which its validation refuses)."""
    merged: dict[str, Any] = {}
    origin: dict[str, list[tuple[Path, int]]] = {}  # list key -> (file, index in file)
    owner: dict[str, Path] = {}  # mapping key -> the file that set it last
    for path in paths:
        for file in config_files(path):
            try:
                data = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{file}: cannot read YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{file}: expected a mapping at the top level")
            for key, value in data.items():
                if key in _LISTS and isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
                    origin.setdefault(key, []).extend((file, i) for i in range(len(value)))
                else:
                    merged[key] = value
                    owner[str(key)] = file
    if "tenant" in merged and merged["tenant"] != tenant:
        raise ConfigError(f"{owner['tenant']}: tenant: {merged['tenant']!r} is not the tenant "
                          f"{tenant!r} of the directory it is in (leave `tenant` out: the "
                          "directory decides)")  # fmt: skip
    merged["tenant"] = tenant
    if tenant != "default" and isinstance(merged.get("api_tokens"), list):
        merged["api_tokens"] = [{"tenant": tenant, **t} if isinstance(t, dict) else t
                                for t in merged["api_tokens"]]  # fmt: skip
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        every = ", ".join(sorted({str(f) for fs in origin.values() for f, _ in fs}
                                 | {str(f) for f in owner.values()})) or "config"  # fmt: skip
        lines = []
        for err in exc.errors(include_url=False):
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
            loc = loc.replace(".[", "[")
            msg = err["msg"].removeprefix("Value error, ")
            where = f"{loc}: {msg}" if loc else msg
            lines.append(_attribute(where, origin, owner, every))
        raise ConfigError("\n".join(lines)) from exc


def _attribute(
    where: str, origin: dict[str, list[tuple[Path, int]]], owner: dict[str, Path], every: str
) -> str:
    """Prefix the file an error is about, and make the list index relative to that file."""
    m = _ITEM.match(where)
    if m and m["key"] in origin and int(m["index"]) < len(origin[m["key"]]):
        file, local = origin[m["key"]][int(m["index"])]
        return f"{file}: {m['key']}[{local}]{where[m.end() :]}"
    head = where.split(".", 1)[0].split("[", 1)[0].split(":", 1)[0]
    if head in owner:
        return f"{owner[head]}: {where}"
    return f"{every}: {where}"
