"""The detector variants the NAB cross-validation chooses among, and how a variant is applied.

A variant is a spec and module constants overridden while it runs (`overridden`).
Overrides of `benchmarks.*` constants (the `choose-*` variants, switching the procedures
of `benchmarks/threshold_choice.py`) change only what is chosen on the training files
and reuse the default's cached scores; the others change the detector's scores.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks import threshold_choice


@dataclass(frozen=True)
class Variant:
    """A detector configuration: a spec and module constants overridden while it runs."""

    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # "module.NAME": value


# The shipped default first; experiments add candidates here (and say so in
# docs/anomaly-evaluation.md).
def _zero(log_step: float) -> float:
    return 0.0


_C = "processors.anomaly.calibration."
_L = "processors.anomaly.likelihood."
_DENSITY = _L + "DENSITY"
_T = "benchmarks.threshold_choice."
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("default"),
        Variant("stretch35", overrides={_C + "STRETCH": 35}),
        Variant("stretch140", overrides={_C + "STRETCH": 140}),
        Variant("daily", spec={"season": "daily"}),
        Variant("daily-stretch35", spec={"season": "daily"}, overrides={_C + "STRETCH": 35}),
        Variant("stretch20", overrides={_C + "STRETCH": 20}),
        Variant("lag1", overrides={_C + "LAG": 1}),
        Variant("lag10", overrides={_C + "LAG": 10}),
        Variant("run5", overrides={_L + "SHORT": 0.2}),
        Variant("run20", overrides={_L + "SHORT": 0.05}),
        Variant("perpoint", overrides={"processors.anomaly.timescale._decades": _zero}),
        # the default without the value density (density.py; the default since it fits the
        # speed budget); its other settings (its run, in the alerts only, replacing the
        # Gaussian novelty, without smoothing, Bonferroni, one calibrator) were measured at
        # commit 1d0f01f
        Variant("no-density", overrides={_DENSITY: False}),
        # HTM's bounded miss in the run (likelihood.BOUNDED, bounded-* variants) was measured
        # at commit e28dc03 and left the detector (docs/anomaly-evaluation.md)
        # HTM's spatial anomaly (likelihood.SPATIAL, spatial-* variants) was measured at
        # commit 7b3689f and left the detector (docs/anomaly-evaluation.md)
        # the context-conditional forecast (sequence.py, seq-* variants) was measured at
        # commit 5f79e78 and left the detector (docs/anomaly-evaluation.md)
        # pattern novelty (ctx-*) and Bonferroni / Fisher combinations were measured at
        # commit e6a3cf3 and left the detector (docs/anomaly-evaluation.md)
        # window novelty by adaptive resonance (resonance.py, art-* variants) was measured
        # at commit 3c696a6 and left the detector (docs/anomaly-evaluation.md)
        # peaks over threshold (pot* variants) was measured at commit 57b2aab and left the
        # detector (docs/anomaly-evaluation.md)
        # how the threshold and the rule are chosen on the training files (the detector is
        # the default's; benchmarks/threshold_choice.py)
        *(
            Variant(f"choose-{how}", overrides={_T + "THRESHOLD": how, _T + "RULE": how})
            for how in threshold_choice.METHODS[1:]
        ),
        Variant("choose-argmax-rule", overrides={_T + "RULE": "argmax"}),  # before
        Variant(
            "choose-bagged-rare",
            overrides={_T + "THRESHOLD": "bagged", _T + "RULE": "bagged", _T + "QUANTILE": 0.25},
        ),
        # the second, coarser time scale (blocks.py, blocks-* variants) was measured at
        # commit 3209d79 and left the detector (docs/anomaly-evaluation.md)
        # a learned combination of the point's evidence, fitted on the training folds
        # (learned_combination.py, likelihood.WEIGHTS, learn-* variants) was measured at
        # commit 6598f9c and left the detector (docs/anomaly-evaluation.md)
    ]
}


@contextlib.contextmanager
def overridden(overrides: dict[str, Any]) -> Iterator[None]:
    saved = []
    for dotted, value in overrides.items():
        module_name, attr = dotted.rsplit(".", 1)
        module = importlib.import_module(module_name)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, value)
    try:
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


def choice_overrides(variant: Variant) -> dict[str, Any]:
    """The overrides of how the threshold and the rule are chosen (benchmarks.threshold_choice)."""
    return {k: v for k, v in variant.overrides.items() if k.startswith("benchmarks.")}


def detector_overrides(variant: Variant) -> dict[str, Any]:
    """The overrides that change the scores (the others change only what is chosen)."""
    return {k: v for k, v in variant.overrides.items() if not k.startswith("benchmarks.")}
