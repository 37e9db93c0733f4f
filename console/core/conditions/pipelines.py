"""Pipelines: is the job running on time, succeeding, finishing, and doing its usual amount of work.

A pipeline's reading is the newest page of its MLflow runs (`PipelineReading`), judged whole at every
poll: nothing is learnt between polls, so a restarted watcher judges exactly as the one before did.
Durations and watched metrics are judged against the pipeline's own finished runs by the robust
median/MAD detector (`detectors/robust`), only in the direction that is bad.

Rules: `pipeline_late` (no successful run within `every + grace`), `pipeline_failed` (the latest run
that ended failed or was killed), `pipeline_stuck` (a run still running past `max_duration` or its
usual duration times `threshold`), `pipeline_slow` (the latest successful run took far longer than
usual, or longer than `max_duration`), `run_metric` (one per watched metric: the latest successful
run's value far off its usual in the bad direction). `threshold` is the robust z of the two detector
rules and the factor over the usual duration of `pipeline_stuck`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_console.core.conditions.base import Condition
from mlops_console.core.conditions.params import RuleParams, resolve
from mlops_console.core.detectors.base import UNKNOWN, Verdict
from mlops_console.core.detectors.robust import RobustDetector, RobustParams
from mlops_console.core.formatting import age
from mlops_console.core.registry.records import RunInfo

if TYPE_CHECKING:
    from mlops_console.config import Settings
    from mlops_console.config.pipelines import PipelineSettings

DEFAULTS = {
    "pipeline_late": RuleParams(True, 0, 0.0, "critical", "pipeline late", ""),
    "pipeline_failed": RuleParams(True, 0, 0.0, "critical", "pipeline run failed", ""),
    "pipeline_stuck": RuleParams(True, 3.0, 0.0, "critical", "pipeline run stuck", "x usual duration"),
    "pipeline_slow": RuleParams(True, 3.5, 0.0, "warning", "pipeline run slow", " robust z"),
    "run_metric": RuleParams(True, 3.5, 0.0, "warning", "pipeline run metric off its usual", " robust z"),
}
MIN_HISTORY = 5
"""Earlier successful runs a duration or metric is judged against; with fewer, no verdict."""
SLOW_FLOOR = 0.5
"""A run is slow only when it took at least this much (50 %) longer than the usual as well."""
METRIC_FLOOR = 0.2
"""A metric is off only when it is at least this far (20 %) from its usual as well."""


@dataclass(frozen=True, slots=True)
class PipelineReading:
    """One pipeline at one poll: the runs read (newest start first), and since when it is watched."""

    pipeline: PipelineSettings
    runs: tuple[RunInfo, ...]
    now: float
    watching_since: float
    """When this engine first read the pipeline: a pipeline with no successful run in the page read
    is late `every + grace` after that (not at once: a new pipeline has had no chance yet)."""


def _span(seconds: float) -> str:
    return age(0.0, max(seconds, 0.0))


def last_success(runs: tuple[RunInfo, ...]) -> RunInfo | None:
    return next((r for r in runs if r.status == "FINISHED"), None)


def usual_duration(runs: tuple[RunInfo, ...]) -> float | None:
    """Median duration of the successful runs read, when there are enough of them."""
    durations = [d for r in runs if r.status == "FINISHED" and (d := r.duration) is not None]
    return statistics.median(durations) if len(durations) >= MIN_HISTORY else None


def judge(values: list[tuple[float, float]], direction: str, z: float, *, log: bool, floor: float) -> Verdict:
    """The verdict on the last of `values` (oldest first) against the ones before it."""
    detector = RobustDetector(
        RobustParams(
            direction=direction,
            log=log,
            z=z,
            rel_floor=floor,
            window=max(len(values), 3),
            warmup=MIN_HISTORY,
            seasonal=False,
            long_window=0,
            accept_after=0,
            shift_after=len(values) + 1,
        )
    )
    verdict = UNKNOWN
    for at, value in values:
        verdict = detector.update(at, value)
    return verdict


class _Rules:
    def __init__(self, settings: Settings, reading: PipelineReading) -> None:
        self.settings, self.reading = settings, reading

    def params(self, rule: str) -> RuleParams:
        return resolve(DEFAULTS, self.settings, rule, self.reading.pipeline.name)

    def condition(
        self,
        rule: str,
        active: bool | None,
        value: float | None,
        detail: str,
        *,
        threshold: float | None = None,
        metric: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Condition | None:
        params = self.params(rule)
        if not params.enabled:
            return None
        pipeline = self.reading.pipeline
        return Condition(
            rule,
            pipeline.label,
            active,
            params.severity,
            params.for_,
            value,
            params.threshold if threshold is None else threshold,
            detail,
            model=metric,
            interval=pipeline.poll,
            evidence=evidence,
        )


def conditions(settings: Settings, reading: PipelineReading) -> list[Condition]:
    """One condition per enabled rule (and per watched metric) for one pipeline's runs."""
    rules = _Rules(settings, reading)
    out = [_late(rules), _failed(rules), _stuck(rules), _slow(rules)]
    out += [_metric(rules, name, direction) for name, direction in reading.pipeline.metrics.items()]
    return [c for c in out if c is not None]


def _late(rules: _Rules) -> Condition | None:
    reading, pipeline = rules.reading, rules.reading.pipeline
    success = last_success(reading.runs)
    since = (success.end or success.start) if success is not None else None
    limit = pipeline.late_after
    if since is None:
        since = reading.watching_since
        what = f"no successful run of {pipeline.name} among its last {len(reading.runs)} runs"
    else:
        what = f"last successful run of {pipeline.name} ended {_span(reading.now - since)} ago"
    overdue = reading.now - since
    detail = f"{what} (expected every {_span(pipeline.every)}, late after {_span(limit)})"
    return rules.condition("pipeline_late", overdue > limit, overdue, detail, threshold=limit)


def _failed(rules: _Rules) -> Condition | None:
    ended = next((r for r in rules.reading.runs if r.finished), None)
    failed = ended is not None and ended.status in ("FAILED", "KILLED")
    name = rules.reading.pipeline.name
    if ended is None:
        detail = f"{name} has no finished run"
    else:
        ago = f"{_span(rules.reading.now - ended.end)} ago" if ended.end else "at an unknown time"
        detail = f"latest run {ended.run_id} of {name} ended {ended.status} {ago}"
    evidence = {"run_id": ended.run_id, "status": ended.status} if ended is not None else None
    return rules.condition("pipeline_failed", failed, None, detail, evidence=evidence)


def _stuck(rules: _Rules) -> Condition | None:
    reading, pipeline = rules.reading, rules.reading.pipeline
    ended = next((r for r in reading.runs if r.finished), None)
    after = ended.start if ended is not None and ended.start is not None else float("-inf")
    # A run older than a run that has ended since was abandoned, not stuck: the pipeline moved on.
    running = [r for r in reading.runs if not r.finished and r.start is not None and r.start >= after]
    if not running:
        return rules.condition("pipeline_stuck", False, None, f"no run of {pipeline.name} is running")
    oldest = min(running, key=lambda r: r.start or 0.0)
    took = reading.now - (oldest.start or reading.now)
    usual = usual_duration(reading.runs)
    factor = rules.params("pipeline_stuck").threshold
    limits = [x for x in (pipeline.max_duration, usual * factor if usual is not None else None) if x]
    if not limits:
        return rules.condition("pipeline_stuck", None, took, "no max_duration and too few runs to know")
    limit = min(limits)
    usual_text = f", usually {_span(usual)}" if usual is not None else ""
    detail = (
        f"run {oldest.run_id} of {pipeline.name} running for {_span(took)} (limit {_span(limit)}{usual_text})"
    )
    evidence = {"run_id": oldest.run_id, "running_for": took, "limit": limit, "usual": usual}
    return rules.condition("pipeline_stuck", took > limit, took, detail, threshold=limit, evidence=evidence)


def _successes(runs: tuple[RunInfo, ...]) -> list[RunInfo]:
    """Successful runs, oldest first."""
    return [r for r in reversed(runs) if r.status == "FINISHED"]


def _slow(rules: _Rules) -> Condition | None:
    reading, pipeline = rules.reading, rules.reading.pipeline
    done = [(r.start or 0.0, d, r) for r in _successes(reading.runs) if (d := r.duration) is not None]
    if not done:
        return rules.condition("pipeline_slow", None, None, f"{pipeline.name} has no successful run")
    z = rules.params("pipeline_slow").threshold
    verdict = judge([(at, d) for at, d, _ in done], "up", z, log=True, floor=SLOW_FLOOR)
    _, took, run = done[-1]
    over_limit = pipeline.max_duration is not None and took > pipeline.max_duration
    active = True if over_limit else verdict.anomalous
    usual = verdict.evidence.get("median")
    usual_text = f", usually {_span(usual)}" if isinstance(usual, float) else ""
    limit_text = f", limit {_span(pipeline.max_duration)}" if pipeline.max_duration else ""
    detail = f"run {run.run_id} of {pipeline.name} took {_span(took)}{usual_text}{limit_text}"
    evidence = {"run_id": run.run_id, "detector": "robust", **verdict.evidence}
    return rules.condition("pipeline_slow", active, took, detail, threshold=z, evidence=evidence)


def _metric(rules: _Rules, name: str, direction: str) -> Condition | None:
    reading, pipeline = rules.reading, rules.reading.pipeline
    successes = _successes(reading.runs)
    latest = successes[-1] if successes else None
    if latest is None or latest.metric(name) is None:
        missing = (
            f"the latest successful run {latest.run_id} did not log it" if latest else "no successful run"
        )
        return rules.condition("run_metric", None, None, f"{pipeline.name} {name}: {missing}", metric=name)
    values = [(r.start or 0.0, v) for r in successes if (v := r.metric(name)) is not None]
    z = rules.params("run_metric").threshold
    bad = "down" if direction == "drop" else "up"
    verdict = judge(values, bad, z, log=False, floor=METRIC_FLOOR)
    value = values[-1][1]
    usual = verdict.evidence.get("median")
    words = "fell to" if direction == "drop" else "rose to"
    usual_text = f" (usually {usual:.4g})" if isinstance(usual, float) else ""
    detail = f"{pipeline.name} {name} {words} {value:.4g} in run {latest.run_id}{usual_text}"
    if not verdict.anomalous:
        detail = f"{pipeline.name} {name} {value:.4g} in run {latest.run_id}{usual_text}"
    evidence = {"run_id": latest.run_id, "metric": name, "bad": direction, **verdict.evidence}
    return rules.condition(
        "run_metric", verdict.anomalous, value, detail, threshold=z, metric=name, evidence=evidence
    )
