"""Tags and host labels of monitoring systems (Zabbix tags, Checkmk host and service
labels) as tocsin labels: label names are stricter than theirs, so a name is rewritten
to the label syntax rather than refused, and the fixed labels an intake sets always win
over a tag of the same name."""

from __future__ import annotations

import re
from collections.abc import Iterable

from schemas.types import MAX_LABEL_VALUE, MAX_LABELS

_INVALID = re.compile(r"[^a-zA-Z0-9_.\-]")
MAX_KEY = 128


def label_key(name: str) -> str | None:
    """``name`` in the label syntax (``[a-zA-Z_][a-zA-Z0-9_.-]*``, at most 128
    characters): other characters become ``_``; None when nothing is left."""
    key = _INVALID.sub("_", name.strip())[:MAX_KEY]
    if not key.strip("_"):
        return None
    return key if key[0].isalpha() or key[0] == "_" else f"_{key}"[:MAX_KEY]


def merge_labels(fixed: dict[str, str], tags: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The intake's own labels, then tags in order while there is room (the first of
    two tags with one name wins), values cut at the label bound."""
    labels = {k: v[:MAX_LABEL_VALUE] for k, v in fixed.items() if v}
    for name, value in tags:
        if len(labels) >= MAX_LABELS:
            break
        key = label_key(name)
        if key is not None and key not in labels:
            labels[key] = value[:MAX_LABEL_VALUE]
    return labels
