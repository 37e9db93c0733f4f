"""What a promote or rollback moves: an alias, or (for teams on legacy stages) a stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_console.config import Settings

HISTORY_TAG = "mlops_console.history."
STAGE_HISTORY_TAG = "mlops_console.stage_history."
LEGACY_STAGES = ("Staging", "Production", "Archived")


@dataclass(frozen=True)
class Target:
    """What moves: an alias, or a legacy stage."""

    alias: str | None = None
    stage: str | None = None

    @property
    def label(self) -> str:
        return f"alias {self.alias}" if self.alias else f"stage {self.stage}"

    @property
    def key(self) -> str:
        """The audit trail's `alias` column: the alias name, or `stage:<Stage>`."""
        return self.alias if self.alias else f"stage:{self.stage}"

    @property
    def tag(self) -> str:
        """The registered-model tag that keeps this alias's (or stage's) history."""
        return HISTORY_TAG + self.alias if self.alias else STAGE_HISTORY_TAG + str(self.stage)


def resolve_target(
    settings: Settings, model: str, alias: str | None = None, stage: str | None = None
) -> Target:
    """`--stage` wins when given; otherwise the alias, defaulting to the model's configured one."""
    if stage:
        normalized = next((s for s in LEGACY_STAGES if s.lower() == stage.lower()), stage)
        return Target(stage=normalized)
    return Target(alias=alias or settings.alias_for(model))
