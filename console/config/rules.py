"""`[[rules]]`: overrides of a built-in rule for the endpoints a glob matches."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlops_console.config.values import Duration, Section, Severity


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

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        from mlops_console.core.conditions import DEFAULTS

        if value not in DEFAULTS:
            names = [repr(name) for name in DEFAULTS]
            raise ValueError(f"Input should be {', '.join(names[:-1])} or {names[-1]}")
        return value
