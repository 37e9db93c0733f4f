"""Does the endpoint answer, and are its answers well-formed: `down` and `invalid_prediction`."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.params import EndpointRules, RuleParams

DEFAULTS = {
    "down": RuleParams(True, 2, 0.0, "critical", "endpoint down", " failed probes"),
    "invalid_prediction": RuleParams(True, 2, 0.0, "critical", "invalid predictions", " invalid answers"),
}


def conditions(reading: Reading, rules: EndpointRules) -> Iterator[Condition | None]:
    name = reading.endpoint
    failures = reading.consecutive_failures
    reason = f" (last error: {reading.last_error})" if reading.last_error else ""
    down = rules.params("down")
    yield rules.condition(
        "down",
        evidence(failures >= down.threshold, clear=reading.answered),
        failures,
        f"{name} failed {failures} consecutive probes (threshold {down.threshold:g}){reason}",
    )
    invalid = reading.consecutive_invalid
    yield rules.condition(
        "invalid_prediction",
        evidence(
            invalid >= rules.params("invalid_prediction").threshold,
            clear=reading.answered and not invalid,
        ),
        invalid,
        f"{name} returned {invalid} invalid prediction answers in a row{reason}",
    )
