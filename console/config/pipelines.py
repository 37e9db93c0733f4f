"""`[[pipelines]]`: training and batch-scoring jobs that log runs to MLflow, and what to expect of them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlops_console.config.values import Duration, Section

PIPELINE_PREFIX = "pipeline:"
"""How a pipeline's alerts name it in the endpoint column (`pipeline:nightly-train`)."""
RUNS_PER_READ = 50
"""Runs read per pipeline per poll (newest first): the recent history every rule judges from."""


class PipelineSettings(Section):
    """One pipeline: the MLflow runs it logs, how often a successful one is expected, what to watch."""

    name: str = Field(min_length=1, max_length=200)
    experiment: str | None = None
    """The MLflow experiment its runs are logged to, by name (or `experiment_id`)."""
    experiment_id: str | None = None
    filter: str | None = None
    """An MLflow search filter selecting this pipeline's runs, e.g. `tags.pipeline = 'nightly'`."""
    every: Duration = Field(gt=0)
    """A successful run is expected at least this often."""
    grace: Duration | None = Field(default=None, ge=0)
    """Extra time before a missing run counts as late (default: a tenth of `every`)."""
    max_duration: Duration | None = Field(default=None, gt=0)
    """A run still running after this long is stuck, and one that took longer is slow (optional: the
    duration is also judged against the pipeline's own history)."""
    metrics: dict[str, Literal["drop", "rise"]] = {}
    """Run metrics to watch, and which direction is bad: `{ rows_processed = "drop", val_rmse = "rise" }`."""
    poll: Duration = Field(default=60.0, gt=0)
    """Seconds between two reads of the pipeline's runs (one `search_runs` each)."""

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or len(name) > 250:
                raise ValueError("metric names are 1 to 250 characters")
        return value

    @model_validator(mode="after")
    def _one_experiment(self) -> PipelineSettings:
        if bool(self.experiment) == bool(self.experiment_id):
            raise ValueError("set exactly one of `experiment` (a name) or `experiment_id`")
        return self

    @property
    def label(self) -> str:
        """The alert's endpoint column: pipelines and endpoints never share a fingerprint or a row."""
        return PIPELINE_PREFIX + self.name

    @property
    def late_after(self) -> float:
        """Seconds after the last successful run before the pipeline is late (`every` + `grace`)."""
        grace = self.grace if self.grace is not None else self.every / 10
        return self.every + grace
