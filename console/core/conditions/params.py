"""Rule parameters: each family's defaults, overridden per endpoint by `[[rules]]` tables."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

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
    return replace(params, **changes)  # type: ignore[arg-type]


class EndpointRules:
    """The rules as configured for one endpoint: parameters, and conditions built from them."""

    def __init__(self, defaults: Mapping[str, RuleParams], settings: Settings, reading: Reading) -> None:
        self._defaults = defaults
        self._settings = settings
        self.reading = reading

    def params(self, rule: str) -> RuleParams:
        return resolve(self._defaults, self._settings, rule, self.reading.endpoint)

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
