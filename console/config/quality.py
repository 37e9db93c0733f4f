"""`[endpoints.inference_log]` and `[endpoints.drift]`: where an endpoint's inference log is, and how
its model quality is judged (reference, window, sample-size guards, how often it is evaluated).

The rules' own thresholds (`feature_drift`'s share of drifting features, `input_schema`'s share of
broken rows, `stuck_prediction`'s run of rows, `performance_drop`'s margin) are `[[rules]]` overrides
like every other rule's.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlops_console.config.values import Duration, Section

ARTIFACT_PREFIX = "artifact:"
REFERENCE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")


class LogFileSettings(Section):
    path: str = Field(min_length=1)
    """A JSON-lines or CSV file, or an SQLite file (then `table` names the table)."""
    format: Literal["jsonl", "csv", "sqlite"] = "jsonl"
    table: str | None = Field(default=None, min_length=1)
    """The table holding the records, for `format = "sqlite"` (and only then)."""

    @model_validator(mode="after")
    def _table_for_sqlite(self) -> LogFileSettings:
        if self.format == "sqlite" and not self.table:
            raise ValueError('`format = "sqlite"` needs `table`, the table that holds the records')
        if self.format != "sqlite" and self.table:
            raise ValueError(f'`table` is for `format = "sqlite"` only (format is {self.format!r})')
        return self


class InferenceLogSettings(LogFileSettings):
    """The log the serving side writes (`mlops-console serve --log-inferences PATH`)."""

    actuals: LogFileSettings | None = None
    """A second log of actual outcomes (`{"time", "id", "actual"}` records, in any of the formats),
    joined to the scored rows by `id` within `[endpoints.drift] actual_delay`. Actuals in the
    inference log itself are read without it."""


class DriftSettings(Section):
    reference: str | None = None
    """`artifact:NAME` (an artifact of the served version's training run, found through the registry)
    or a CSV/Parquet/JSON-lines path. Unset: each version's first `first_rows` rows after its deploy."""
    window: Duration = Field(default=900.0, gt=0, le=7 * 86400)
    """The current window compared with the reference."""
    evaluate_every: Duration = Field(default=30.0, gt=0, le=3600)
    """How often the window is scored and the quality rules evaluated."""
    min_reference: int = Field(default=1000, ge=1)
    """Reference values a feature needs before it gets a verdict."""
    min_current: int = Field(default=500, ge=1)
    """Current values a feature needs before it gets a verdict."""
    first_rows: int = Field(default=1500, ge=1)
    """Rows of a version learned as its reference when `reference` is unset."""
    max_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    """Rows kept in the current window at most (memory stays bounded)."""
    actual_delay: Duration = Field(default=3600.0, gt=0)
    """How late an actual outcome may arrive (by `id`) and still be joined to its prediction."""
    min_labelled: int = Field(default=200, ge=1)
    """Labelled rows a window needs before `performance_drop` may fire."""

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(ARTIFACT_PREFIX):
            name = value[len(ARTIFACT_PREFIX) :].strip()
            if not name:
                raise ValueError("expected an artifact path after 'artifact:', e.g. artifact:reference.csv")
            if name.startswith("/") or ".." in PurePath(name).parts:
                raise ValueError("an artifact path is relative to the run's artifacts, without '..'")
            return value
        if not value.strip():
            raise ValueError("expected artifact:NAME or the path of a CSV, Parquet or JSON-lines file")
        if PurePath(value).suffix.lower() not in REFERENCE_SUFFIXES:
            raise ValueError(
                f"expected a file ending in {', '.join(REFERENCE_SUFFIXES)} (the suffix says the format), "
                "or artifact:NAME"
            )
        return value

    @model_validator(mode="after")
    def _enough_first_rows(self) -> DriftSettings:
        if self.reference is None and self.first_rows < self.min_reference:
            raise ValueError(
                f"`first_rows` ({self.first_rows}) is below `min_reference` ({self.min_reference}): "
                "a learned reference would never give a verdict"
            )
        return self
