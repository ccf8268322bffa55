"""A variant's per-file scores on a NAB corpus, cached, and those scores as NAB's rows.

Per file, the detector's episode score (what NAB ranks) and its undamped rarity (what the
alerting rule reads). They are cached under $TOCSIN_NAB_CACHE (default
/tmp/tocsin-nab-cv), keyed by the detector's source, the variant's detector settings and
the file, so a run after a change rescores only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.nab_halves import Corpus
from benchmarks.nab_variants import Variant, detector_overrides, overridden
from processors.anomaly import AnomalySeries
from processors.evaluation.nab import PROFILES, FileRows, Profile, prepare
from schemas.anomaly import AnomalySpec

CACHE = Path(os.environ.get("TOCSIN_NAB_CACHE", "/tmp/tocsin-nab-cv"))
SOURCES = Path(__file__).resolve().parent.parent / "processors" / "anomaly"
SPEC_SOURCE = SOURCES.parent.parent / "schemas" / "anomaly.py"
STANDARD = PROFILES[0]


def _digest(variant: Variant) -> str:
    h = hashlib.sha256()
    for p in [*sorted(SOURCES.glob("*.py")), SPEC_SOURCE]:
        h.update(p.read_bytes())
    detector = sorted(detector_overrides(variant).items())
    h.update(json.dumps([variant.spec, detector], default=str).encode())
    return h.hexdigest()[:16]


@dataclass
class Scored:
    """Per file: the episode score (what NAB ranks) and the undamped rarity (what alerts use)."""

    scores: list[list[float]]
    rarity: list[list[float]]
    points_per_cpu_s: float


def score_variant(corpus: Corpus, variant: Variant) -> Scored:
    label = variant.name if variant.spec or detector_overrides(variant) else "default"
    folder = CACHE / f"{label}-{_digest(variant)}"
    spec = AnomalySpec.model_validate({**variant.spec, "warm_up": 0})
    scores, rarity = [], []
    cpu = 0.0
    computed = 0
    for key, _, values, ats in corpus:
        path = folder / (key.replace("/", "__") + ".bin")
        if path.is_file():
            a = array("d")
            a.frombytes(path.read_bytes())
            n = len(a) // 2
            scores.append(a[:n].tolist())
            rarity.append(a[n:].tolist())
            continue
        with overridden(variant.overrides):
            d = AnomalySeries(spec)
            update = d.update
            started = time.process_time()
            verdicts = [update(v, at) for v, at in zip(values, ats, strict=True)]
            cpu += time.process_time() - started
        computed += len(values)
        s = [x.score for x in verdicts]
        r = [x.rarity for x in verdicts]
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(array("d", s + r).tobytes())
        scores.append(s)
        rarity.append(r)
    return Scored(scores, rarity, computed / cpu if cpu else 0.0)


def file_rows(
    corpus: Corpus, scores: Sequence[Sequence[float]], windows: dict[str, Any], profile: Profile
) -> list[FileRows]:
    """Each file's scores with its labelled windows, as NAB's scorer reads them."""
    return [
        prepare(key, s, ts, [(a, b) for a, b in windows.get(key, [])], profile)
        for (key, ts, _, _), s in zip(corpus, scores, strict=True)
    ]
