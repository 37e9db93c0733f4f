"""Does the endpoint serve what the registry says it should: `version_mismatch`, and the resolve of
`deploy_not_converged` (raised by a promote or rollback whose redeploy did not converge)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.params import EndpointRules, RuleParams

DEFAULTS = {
    "version_mismatch": RuleParams(True, 0, 120.0, "warning", "serves the wrong model version", ""),
}
EXTERNAL_TITLES = {"deploy_not_converged": "deploy did not converge"}
"""Rules raised outside the engine (by a command) that the engine resolves."""


def conditions(reading: Reading, rules: EndpointRules) -> Iterator[Condition | None]:
    name, model = reading.endpoint, reading.model
    versions_known = bool(reading.served_version and reading.expected_version)
    yield rules.condition(
        "version_mismatch",
        evidence(reading.version_mismatch, clear=versions_known),
        None,
        f"{name} serves {model} v{reading.served_version} but {reading.alias or 'the alias'} points to "
        f"v{reading.expected_version}",
    )
    healthy = reading.health in ("up", "degraded") and not reading.version_mismatch
    for rule, alert_model in reading.adopted:
        if rule == "deploy_not_converged":
            yield Condition(
                rule,
                name,
                None if reading.health == "unknown" else not healthy,
                "critical",
                0.0,
                None,
                None,
                f"{name} is healthy and serves the expected version again",
                alert_model,
                interval=reading.interval,
            )


def quiet(reading: Reading, rules: EndpointRules) -> bool:
    """No rule here can hold (see `conditions.quiet`): the versions agree (or one is unknown), and no
    open alert of a deploy waits for its resolve."""
    return not reading.version_mismatch and not reading.adopted
