"""`[[rules]]`: overrides of a built-in rule for the endpoints a glob matches."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from mlops_console.config.values import Duration, Section, Severity, check_runbook_url


class RuleSettings(Section):
    """One `[[rules]]` table: overrides a built-in rule for the endpoints matching `endpoint`."""

    rule: str
    """A rule the engine evaluates (`mlops_console.core.conditions.DEFAULTS`)."""
    endpoint: str = "*"
    """Glob over endpoint names; later tables win over earlier ones."""
    enabled: bool | None = None
    threshold: float | None = None
    for_: Duration | None = Field(default=None, alias="for")
    severity: Severity | None = None
    detector: str | None = None
    """What judges the rule's signal: `threshold` (a static limit), `robust`, `binomial`, `burn_rate`
    (which ones fit the rule is checked with the rest of the file, see `loading`)."""
    params: dict[str, Any] | None = None
    """The detector's parameters, e.g. `{ z = 4.0, warmup = 60 }`."""
    every: Duration | None = None
    """Seconds between two values the detector judges (default 60)."""
    persistence: tuple[int, int] | None = None
    """`[k, n]`: the condition holds while k of the last n judgements were anomalous."""
    runbook: str | None = None
    """What to do when this rule fires on these endpoints: an http(s) URL shown with the alert."""

    @field_validator("runbook")
    @classmethod
    def _runbook(cls, value: str | None) -> str | None:
        return check_runbook_url(value)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0 seconds")
        return value

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        from mlops_console.core.conditions import DEFAULTS

        if value not in DEFAULTS:
            names = [repr(name) for name in DEFAULTS]
            raise ValueError(f"Input should be {', '.join(names[:-1])} or {names[-1]}")
        return value
