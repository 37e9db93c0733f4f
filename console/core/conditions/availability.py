"""Does the endpoint answer, and are its answers well-formed: `down` and `invalid_prediction`."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.params import EndpointRules, RuleParams
from mlops_console.core.conditions.quality import invalid_in_log

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
    # Two kinds of evidence: our probes' answers of the wrong shape, and invalid predictions in the
    # endpoint's inference log (NaN, probabilities outside [0, 1], outside the output signature).
    invalid = reading.consecutive_invalid
    threshold = rules.params("invalid_prediction").threshold
    probed = invalid >= threshold
    logged, logged_detail = invalid_in_log(reading, threshold)
    details = [f"{name} returned {invalid} invalid prediction answers in a row{reason}"] if probed else []
    details += [f"{name}: {logged_detail}"] if logged else []
    yield rules.condition(
        "invalid_prediction",
        evidence(probed or bool(logged), clear=reading.answered and not invalid and logged is not True),
        invalid,
        "; ".join(details) or f"{name} returned {invalid} invalid prediction answers in a row{reason}",
    )


def quiet(reading: Reading, rules: EndpointRules) -> bool:
    """Neither rule can hold (see `conditions.quiet`): fewer failed probes and invalid answers in a
    row than their thresholds, and no inference log whose invalid predictions count too."""
    return (
        reading.consecutive_failures < rules.params("down").threshold
        and reading.consecutive_invalid < rules.params("invalid_prediction").threshold
        and reading.quality is None
    )
