"""Pipelines: the MLflow runs of training and batch-scoring jobs, read and judged.

`PipelineWatch` (in `watch`) reads each `[[pipelines]]` table's newest runs every `poll` seconds (one
`search_runs` each, in a worker thread) and hands the rules' conditions to the engine; what it read
is published as frozen `PipelineSnapshot`s (in `snapshot`). The rules are `conditions/pipelines`.
"""

from __future__ import annotations

from mlops_console.core.pipelines.snapshot import PipelineSnapshot, Verdict
from mlops_console.core.pipelines.watch import PipelineWatch

__all__ = ["PipelineSnapshot", "PipelineWatch", "Verdict"]
