"""`[[auto_rollback]]`: roll an alias back by itself when a watched rule fires soon after a promote."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlops_console.config.values import Duration, Section

DEFAULT_RULES = ("down", "error_ratio", "latency_p95", "invalid_prediction", "feature_drift")


class AutoRollbackSettings(Section):
    """One `[[auto_rollback]]` table: which alias of which model is watched after a promote, for how
    long, and which rules firing on an endpoint serving it roll it back."""

    model: str = Field(min_length=1)
    alias: str | None = None
    """The alias watched (default: the model's alias from `[registry]`)."""
    watch: Duration = Field(default=600.0, gt=0, le=7 * 86400)
    """How long after a promote a firing rule rolls it back."""
    rules: list[str] = Field(default_factory=lambda: list(DEFAULT_RULES), min_length=1)

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        from mlops_console.core.conditions import DEFAULTS

        unknown = [name for name in value if name not in DEFAULTS]
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r} (one of {', '.join(sorted(DEFAULTS))})")
        return value
