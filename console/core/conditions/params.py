"""Rule parameters: each family's defaults, overridden per endpoint by `[[rules]]` tables."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mlops_console.core.conditions.base import Condition, Reading

if TYPE_CHECKING:
    from mlops_console.config import RuleSettings, Settings


@dataclass(frozen=True)
class RuleParams:
    enabled: bool
    threshold: float
    for_: float
    severity: str
    title: str
    unit: str = ""
    detector: str = "threshold"
    """What judges the rule's signal (see `core/detectors`); `threshold` is the static limit."""
    detector_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The detector's parameters over its defaults for the signal (`[[rules]] params`)."""
    every: float = 60.0
    """Seconds between two values a detector judges (one fresh minute of the window by default)."""
    persistence: tuple[int, int] | None = None
    """k of the last n judgements that make the condition hold; None: the detector's default."""
    target: float | None = None
    """A latency SLO's target in seconds (from the endpoint's `slo`, not `[[rules]]`)."""


def resolve(defaults: Mapping[str, RuleParams], settings: Settings, rule: str, endpoint: str) -> RuleParams:
    """The defaults, overridden by every matching `[[rules]]` table in file order."""
    params = defaults[rule]
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
    detector_params = params.detector_params
    if override.detector is not None and override.detector != params.detector:
        # Another detector: the parameters of the one before mean nothing to it.
        changes["detector"] = override.detector
        detector_params = changes["detector_params"] = MappingProxyType({})
    if override.params:
        changes["detector_params"] = MappingProxyType({**detector_params, **override.params})
    if override.every is not None:
        changes["every"] = override.every
    if override.persistence is not None:
        changes["persistence"] = tuple(override.persistence)
    return replace(params, **changes)  # type: ignore[arg-type]


class EndpointRules:
    """The rules as configured for one endpoint: parameters, and conditions built from them.

    `resolved`: a cache of this endpoint's parameters under these settings, kept by a caller that
    evaluates the same endpoint again and again (the engine, once a probe): resolving walks every
    `[[rules]]` table."""

    def __init__(
        self,
        defaults: Mapping[str, RuleParams],
        settings: Settings,
        reading: Reading,
        resolved: dict[str, RuleParams] | None = None,
    ) -> None:
        self._defaults = defaults
        self._settings = settings
        self.reading = reading
        self._resolved = resolved

    @property
    def settings(self) -> Settings:
        return self._settings

    def params(self, rule: str) -> RuleParams:
        cache = self._resolved
        if cache is None:
            return resolve(self._defaults, self._settings, rule, self.reading.endpoint)
        params = cache.get(rule)
        if params is None:
            params = cache[rule] = resolve(self._defaults, self._settings, rule, self.reading.endpoint)
        return params

    def condition(self, rule: str, active: bool | None, value: float | None, detail: str) -> Condition | None:
        """The rule's condition with its configured severity, `for` and threshold; None if disabled."""
        params = self.params(rule)
        if not params.enabled:
            return None
        reading = self.reading
        return Condition(
            rule,
            reading.endpoint,
            active,
            params.severity,
            params.for_,
            value,
            params.threshold,
            detail,
            reading.model,
            reading.version,
            reading.interval,
        )
