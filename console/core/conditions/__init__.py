"""Rules: a `Reading` of one endpoint in, one `Condition` per rule out, for the alert book.

Each family of rules is one module here (`availability`, `traffic`, `versions`, `quality`) with its
`DEFAULTS` and a `conditions()` function; `FAMILIES` lists them in evaluation order. A new family
is a new module and one line below; `pipelines` judges a pipeline's MLflow runs rather than an
endpoint's reading, so the engine calls it per pipeline (`evaluate_pipeline`). Rules judged by a
detector (`detected`) learn, so their state lives with the endpoint and comes in as
`evaluate(..., detected=...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlops_console.core.conditions import (
    availability,
    detected,
    pipelines,
    quality,
    slo,
    traffic,
    versions,
)
from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.detected import DetectedRules
from mlops_console.core.conditions.params import EndpointRules, RuleParams, resolve

if TYPE_CHECKING:
    from mlops_console.config import Settings

Family = Callable[[Reading, EndpointRules], Iterator[Condition | None]]
Quiet = Callable[[Reading, EndpointRules], bool]

FAMILIES: tuple[Family, ...] = (
    availability.conditions,
    traffic.conditions,
    versions.conditions,
    quality.conditions,
)
QUIET: tuple[Quiet, ...] = (availability.quiet, traffic.quiet, versions.quiet, quality.quiet)
"""Each family's proof that none of its rules can hold, in the order of `FAMILIES` (one per family)."""
DEFAULTS = MappingProxyType(
    {
        **availability.DEFAULTS,
        **traffic.DEFAULTS,
        **detected.DEFAULTS,
        **slo.DEFAULTS,
        **versions.DEFAULTS,
        **quality.DEFAULTS,
        **pipelines.DEFAULTS,
    }
)
"""Every rule the engine evaluates, with its default parameters."""
EXTERNAL_TITLES = MappingProxyType({**versions.EXTERNAL_TITLES})


def evaluate(
    settings: Settings,
    reading: Reading,
    detected: DetectedRules | None = None,
    resolved: dict[str, RuleParams] | None = None,
) -> list[Condition]:
    """Each enabled rule's condition: active, clear, or unknown (None) where the evidence does not say.

    Only evidence clears a condition: `down` after a successful probe, window rules with enough
    samples, `version_mismatch` with both versions known. A restarted engine therefore never
    resolves an open alert just because it has not probed enough yet. `resolved`: the endpoint's
    parameters as resolved by earlier calls with these settings (see `EndpointRules`).
    """
    rules = EndpointRules(DEFAULTS, settings, reading, resolved)
    out = [c for family in FAMILIES for c in family(reading, rules) if c is not None]
    if detected is not None:
        out.extend(c for c in detected.conditions(reading, rules) if c is not None)
    return out


def quiet(
    settings: Settings,
    reading: Reading,
    detected: DetectedRules | None = None,
    resolved: dict[str, RuleParams] | None = None,
) -> bool:
    """True only if `evaluate` would give no active condition and no detector has a value to judge:
    every value is inside its limit. Cheap (no condition, text or evidence is built), so the engine
    asks this first after a probe; for an endpoint the alert book holds nothing of (nothing pending,
    firing, settling or adopted), a quiet reading changes nothing and the book is not asked.

    False is no verdict: the rules must be evaluated. A family's `quiet` may answer False where its
    rules would all be clear or unknown, never True where one would be active."""
    rules = _statically_quiet(settings, reading, resolved)
    return rules is not None and (detected is None or detected.quiet(reading, rules))


def judged_quietly(
    settings: Settings,
    reading: Reading,
    detected: DetectedRules | None = None,
    resolved: dict[str, RuleParams] | None = None,
) -> bool:
    """`quiet`, or quiet but for the detectors' values due: those are judged (as `evaluate` would
    judge them) and True if none of their conditions holds now. Then `evaluate` would give no active
    condition either; for an endpoint the alert book holds nothing of, the engine skips it."""
    rules = _statically_quiet(settings, reading, resolved)
    if rules is None:
        return False
    return detected is None or detected.quiet(reading, rules) or detected.judge(reading, rules)


def _statically_quiet(
    settings: Settings, reading: Reading, resolved: dict[str, RuleParams] | None
) -> EndpointRules | None:
    """The endpoint's rules if no rule family with a static limit can hold now, else None."""
    rules = EndpointRules(DEFAULTS, settings, reading, resolved)
    for family_quiet in QUIET:  # a loop, not `all()` over a generator: this runs on every probe
        if not family_quiet(reading, rules):
            return None
    return rules


def evaluate_pipeline(settings: Settings, reading: pipelines.PipelineReading) -> list[Condition]:
    """Each enabled pipeline rule's condition for one pipeline's runs (see `conditions/pipelines`)."""
    return pipelines.conditions(settings, reading)


def params_for(settings: Settings, rule: str, endpoint: str) -> RuleParams:
    """A rule's parameters for one endpoint: its defaults, overridden by matching `[[rules]]` tables."""
    return resolve(DEFAULTS, settings, rule, endpoint)


def rule_title(rule: str) -> str:
    if rule in DEFAULTS:
        return DEFAULTS[rule].title
    return EXTERNAL_TITLES.get(rule, rule.replace("_", " "))


__all__ = [
    "DEFAULTS",
    "FAMILIES",
    "Condition",
    "DetectedRules",
    "Reading",
    "RuleParams",
    "evaluate",
    "evaluate_pipeline",
    "evidence",
    "judged_quietly",
    "params_for",
    "quiet",
    "rule_title",
]
