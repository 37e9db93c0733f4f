"""Reading each pipeline's runs on its own schedule, judging them, and keeping what was read.

Runs on the engine's loop; every MLflow call goes to a worker thread with the registry client's
deadline. One `search_runs` per pipeline per `poll` (plus one experiment lookup by name, once). An
MLflow that cannot be reached is one state for all pipelines (`state`): the round stops at the first
unreachable read, nothing is judged, and the runs read before are kept. So a registry outage neither
pages per pipeline nor passes for "no run" once it is over: the next read judges the runs it can see.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mlops_console.config import Settings
from mlops_console.config.pipelines import RUNS_PER_READ, PipelineSettings
from mlops_console.core.conditions import Condition, evaluate_pipeline
from mlops_console.core.conditions.pipelines import PipelineReading
from mlops_console.core.pipelines.snapshot import PipelineSnapshot, Verdict
from mlops_console.core.registry.records import (
    RegistryError,
    RegistryNotPermitted,
    RegistryUnavailable,
    RunInfo,
)

if TYPE_CHECKING:
    from mlops_console.core.registry import RegistryClient

log = logging.getLogger("mlops_console.pipelines")

Judged = Callable[[PipelineSettings, list[Condition]], tuple[str, ...]]
"""Told the conditions of each pipeline read; answers the rules now firing for it (the engine)."""


class PipelineWatch:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pipelines = list(settings.pipelines)
        self.state = "connecting"
        """`ok`, `connecting`, or `registry unreachable: <reason>` (for every pipeline at once)."""
        self._client: RegistryClient | None = None
        self._experiments: dict[str, str] = {}
        self._since: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._snapshots = {p.name: _empty(p) for p in self.pipelines}
        self._run_url = _run_url(settings.registry.tracking_uri or "")

    def snapshot(self) -> tuple[PipelineSnapshot, ...]:
        """Every pipeline as last read: frozen values the UI thread may keep."""
        out = tuple(self._snapshots[p.name] for p in self.pipelines)
        if self.state.startswith("registry"):
            # One state for all: every pipeline read fine before shows the outage, not a stale "ok".
            out = tuple(replace(s, state=self.state) if s.state in ("ok", "connecting") else s for s in out)
        return out

    async def run(self, judged: Judged | None) -> None:
        """Read each pipeline when it is due, forever (`judged`: where the conditions go)."""
        while True:
            now = time.time()
            due = [p for p in self.pipelines if self._due.get(p.name, 0.0) <= now]
            if due:
                await self.read(due, judged)
            wake = min(self._due.get(p.name, 0.0) for p in self.pipelines)
            await asyncio.sleep(min(max(wake - time.time(), 0.05), 60.0))

    async def read(self, pipelines: Sequence[PipelineSettings], judged: Judged | None = None) -> None:
        """Read and judge `pipelines` once each, stopping at the first read MLflow does not answer."""
        for pipeline in pipelines:
            self._due[pipeline.name] = time.time() + pipeline.poll
        for pipeline in pipelines:
            try:
                runs = await asyncio.to_thread(self._read, pipeline)
            except (RegistryUnavailable, RegistryNotPermitted) as exc:
                self._unreachable(str(exc))
                return  # the others would wait for the same dead server: next round
            except RegistryError as exc:
                # This pipeline alone (no such experiment, a filter MLflow refuses): said on its row.
                self._reachable()
                self._set(pipeline, state=str(exc))
                continue
            self._reachable()
            now = time.time()
            since = self._since.setdefault(pipeline.name, now)
            conditions = evaluate_pipeline(self.settings, PipelineReading(pipeline, tuple(runs), now, since))
            firing = judged(pipeline, conditions) if judged is not None else ()
            verdicts = tuple(Verdict(c.rule, c.active, c.detail, c.model) for c in conditions)
            self._set(pipeline, state="ok", read_at=now, runs=tuple(runs), verdicts=verdicts, firing=firing)

    def _read(self, pipeline: PipelineSettings) -> list[RunInfo]:
        """Blocking: the experiment's id (looked up once by name) and its newest runs."""
        if self._client is None:
            from mlops_console.core.registry import RegistryClient

            self._client = RegistryClient(self.settings.registry)
        client = self._client
        experiment_id = pipeline.experiment_id
        if experiment_id is None:
            assert pipeline.experiment is not None
            experiment_id = self._experiments.get(pipeline.experiment)
            if experiment_id is None:
                experiment_id = self._experiments[pipeline.experiment] = client.experiment_id(
                    pipeline.experiment
                )
        return client.search_runs(experiment_id, pipeline.filter, RUNS_PER_READ)

    def _unreachable(self, message: str) -> None:
        message = message if message.startswith("registry") else f"registry unreachable: {message}"
        if not self.state.startswith("registry"):  # one line per outage, however its reason reads
            log.warning("pipelines: %s", message, extra={"event": "pipelines", "state": "unreachable"})
        self.state = message

    def _reachable(self) -> None:
        if self.state != "ok":
            log.info("pipelines: registry reachable", extra={"event": "pipelines", "state": "ok"})
        self.state = "ok"

    def _set(self, pipeline: PipelineSettings, **changes: object) -> None:
        self._snapshots[pipeline.name] = replace(self._snapshots[pipeline.name], **changes)  # type: ignore[arg-type]


def _empty(pipeline: PipelineSettings) -> PipelineSnapshot:
    experiment = pipeline.experiment or f"id {pipeline.experiment_id}"
    return PipelineSnapshot(
        name=pipeline.name,
        experiment=experiment,
        every=pipeline.every,
        late_after=pipeline.late_after,
        metrics=tuple(pipeline.metrics.items()),
    )


def _run_url(tracking_uri: str) -> str | None:
    """The MLflow UI's page of a run, for an http(s) tracking server (credentials never shown)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    base = re.sub(r"//[^@/]*@", "//", tracking_uri).rstrip("/")
    return base + "/#/experiments/{experiment_id}/runs/{run_id}"
