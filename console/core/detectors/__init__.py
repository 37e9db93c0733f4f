"""Anomaly detectors: one module per detector, one interface (`base.Detector`), state as plain data.

`create("robust", direction="up")` builds one with its defaults overridden; `restore(state)` rebuilds
one from `Detector.to_state()`. Nothing here imports the engine, the store, the config or Textual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_console.core.detectors.base import STATE_VERSION, Detector, Verdict, params_from
from mlops_console.core.detectors.binomial import BinomialDetector
from mlops_console.core.detectors.burn_rate import BurnRateDetector
from mlops_console.core.detectors.robust import RobustDetector
from mlops_console.core.detectors.threshold import ThresholdDetector

DETECTORS: dict[str, type[Detector]] = {
    d.name: d for d in (ThresholdDetector, RobustDetector, BinomialDetector, BurnRateDetector)
}


def create(name: str, params: Mapping[str, Any] | None = None) -> Detector:
    """A detector by name, with `params` overriding its defaults (unknown names are refused)."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None
    return cls(params_from(cls.Params, params or {}))


def restore(state: Mapping[str, Any]) -> Detector:
    """A detector from `Detector.to_state()`, continuing where it stopped."""
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"detector state of version {state.get('version')!r}, expected {STATE_VERSION}")
    try:
        cls = DETECTORS[state["detector"]]
    except KeyError:
        raise ValueError(f"unknown detector {state.get('detector')!r} in saved state") from None
    return cls.from_state(state)


__all__ = ["DETECTORS", "Detector", "Verdict", "create", "restore"]
