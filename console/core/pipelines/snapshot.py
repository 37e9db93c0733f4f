"""What the console, `status` and `pipelines` show of one pipeline: frozen, JSON-friendly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_console.core.limits import json_safe
from mlops_console.core.registry.records import RunInfo

STOPPING = ("pipeline_late", "pipeline_failed", "pipeline_stuck")
"""Rules that mean a pipeline is not delivering (health `down`); the others mean `degraded`."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's answer on the runs read: active, clear, or unknown (None)."""

    rule: str
    active: bool | None
    detail: str
    metric: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    name: str
    experiment: str
    """The experiment as configured (its name, or `id N`)."""
    every: float
    late_after: float
    state: str = "connecting"
    """`ok`; `connecting` (not read yet); `registry unreachable: ...` (the last read could not reach
    MLflow: the runs shown are from the read before); or what is wrong with this pipeline alone (no
    such experiment, a filter MLflow refuses)."""
    read_at: float | None = None
    runs: tuple[RunInfo, ...] = ()
    """The runs of the last successful read, newest start first."""
    metrics: tuple[tuple[str, str], ...] = ()
    """(metric, `drop` or `rise`) of each watched metric."""
    verdicts: tuple[Verdict, ...] = ()
    firing: tuple[str, ...] = ()
    """Rules firing for this pipeline (`run_metric:NAME` per metric), as the alert book has them; empty
    in a console that follows another watcher."""
    run_url: str | None = None
    """The MLflow UI's address of a run with `{run_id}` to fill in (None for a sqlite registry)."""

    @property
    def health(self) -> str:
        """`up`, `degraded` (slow, a metric off), `down` (late, failed, stuck) or `unknown` (not read)."""
        if self.read_at is None:
            return "unknown"
        active = {v.rule for v in self.verdicts if v.active}
        if active & set(STOPPING):
            return "down"
        return "degraded" if active else "up"

    @property
    def last_run(self) -> RunInfo | None:
        return self.runs[0] if self.runs else None

    @property
    def last_success_at(self) -> float | None:
        for run in self.runs:
            if run.status == "FINISHED":
                return run.end or run.start
        return None

    @property
    def next_due(self) -> float | None:
        """When a successful run is expected next (`every` after the last one)."""
        last = self.last_success_at
        return None if last is None else last + self.every

    @property
    def durations(self) -> tuple[float, ...]:
        """Durations of the successful runs read, oldest first (for sparklines)."""
        return tuple(
            d for r in reversed(self.runs) if r.status == "FINISHED" and (d := r.duration) is not None
        )

    def metric_history(self, name: str) -> tuple[float, ...]:
        return tuple(
            v for r in reversed(self.runs) if r.status == "FINISHED" and (v := r.metric(name)) is not None
        )

    def url_of(self, run: RunInfo) -> str | None:
        if not self.run_url:
            return None
        return self.run_url.replace("{experiment_id}", run.experiment_id).replace("{run_id}", run.run_id)

    def to_dict(self, runs: int = 10) -> dict[str, Any]:
        last = self.last_run
        out: dict[str, Any] = json_safe(
            {
                "name": self.name,
                "health": self.health,
                "experiment": self.experiment,
                "state": self.state,
                "read_at": self.read_at,
                "every": self.every,
                "late_after": self.late_after,
                "last_run": _run_dict(self, last) if last is not None else None,
                "last_success_at": self.last_success_at,
                "next_due": self.next_due,
                "firing": list(self.firing),
                "verdicts": [
                    {"rule": v.rule, "metric": v.metric, "active": v.active, "detail": v.detail}
                    for v in self.verdicts
                ],
                "metrics": dict(self.metrics),
                "runs": [_run_dict(self, r) for r in self.runs[:runs]],
            }
        )
        return out


def _run_dict(snapshot: PipelineSnapshot, run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "name": run.name,
        "status": run.status,
        "start": run.start,
        "end": run.end,
        "duration": run.duration,
        "metrics": dict(run.metrics),
        "url": snapshot.url_of(run),
    }
