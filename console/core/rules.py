"""Built-in detection rules, their defaults, and `[[rules]]` overrides resolved per endpoint."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from mlops_console.config import RuleSettings, Settings

THROUGHPUT_WARMUP = 300.0
"""Seconds of throughput history before a drop can alert: never page on a cold baseline."""
MIN_REQUESTS_FOR_RATIO = 10
"""Requests in the window below which an error ratio is too noisy to alert on."""
MIN_LATENCY_SAMPLES = 5
"""Latency observations in the window below which a p95 may raise an alert but never clears one."""
MAD_SCALE = 1.4826


@dataclass(frozen=True)
class RuleParams:
    enabled: bool
    threshold: float
    for_: float
    severity: str
    title: str
    unit: str = ""


DEFAULTS: dict[str, RuleParams] = {
    "down": RuleParams(True, 2, 0.0, "critical", "endpoint down", " failed probes"),
    "invalid_prediction": RuleParams(True, 2, 0.0, "critical", "invalid predictions", " invalid answers"),
    "latency_p95": RuleParams(True, 1.0, 30.0, "warning", "latency p95 high", "s"),
    "error_ratio": RuleParams(True, 0.05, 30.0, "warning", "error ratio high", ""),
    "throughput_drop": RuleParams(True, 0.5, 60.0, "warning", "throughput collapsed", ""),
    "version_mismatch": RuleParams(True, 0, 120.0, "warning", "serves the wrong model version", ""),
}
EXTERNAL_TITLES = {"deploy_not_converged": "deploy did not converge"}


def rule_title(rule: str) -> str:
    if rule in DEFAULTS:
        return DEFAULTS[rule].title
    return EXTERNAL_TITLES.get(rule, rule.replace("_", " "))


def params_for(settings: Settings, rule: str, endpoint: str) -> RuleParams:
    """The defaults, overridden by every matching `[[rules]]` table in file order."""
    params = DEFAULTS[rule]
    for override in settings.rules:
        if override.rule == rule and fnmatch.fnmatchcase(endpoint, override.endpoint):
            params = _apply(params, override)
    return params


def _apply(params: RuleParams, override: RuleSettings) -> RuleParams:
    changes: dict[str, object] = {}
    if override.enabled is not None:
        changes["enabled"] = override.enabled
    if override.threshold is not None:
        changes["threshold"] = override.threshold
    if override.for_ is not None:
        changes["for_"] = override.for_
    if override.severity is not None:
        changes["severity"] = override.severity
    return replace(params, **changes)


def throughput_dropped(
    rps: float | None, baseline: tuple[float, float, float] | None, threshold: float
) -> tuple[bool, float | None]:
    """A drop below (1 - threshold) of the median that also clears the baseline's own noise (MAD)."""
    if rps is None or baseline is None:
        return False, None
    median, mad, span = baseline
    if span < THROUGHPUT_WARMUP or median <= 0.2:
        return False, None
    drop = 1.0 - rps / median
    noisy = median - rps <= 3 * MAD_SCALE * mad
    return (drop >= threshold and not noisy), drop
