"""MLflow's entities as the registry's plain records."""

from __future__ import annotations

from typing import Any

from mlops_console.core.registry.records import READY, ModelInfo, RunInfo, VersionInfo


def model_info(model: Any) -> ModelInfo:
    latest = sorted((str(v.version) for v in (model.latest_versions or [])), key=int, reverse=True)
    updated = model.last_updated_timestamp
    return ModelInfo(
        name=model.name,
        aliases={alias: str(version) for alias, version in (model.aliases or {}).items()},
        latest_versions=latest,
        description=model.description or None,
        tags=dict(model.tags or {}),
        updated_at=updated / 1000 if updated else None,
    )


def run_info(run: Any) -> RunInfo:
    info = run.info
    metrics = tuple(sorted((str(k), float(v)) for k, v in (run.data.metrics or {}).items()))
    return RunInfo(
        run_id=str(info.run_id),
        status=str(info.status),
        start=info.start_time / 1000 if info.start_time else None,
        end=info.end_time / 1000 if info.end_time else None,
        metrics=metrics,
        name=getattr(info, "run_name", None) or None,
        experiment_id=str(info.experiment_id),
    )


def aliases_by_version(aliases: dict[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in sorted((aliases or {}).items()):
        out.setdefault(str(version), []).append(alias)
    return out


def version_info(mv: Any, aliases_by_version: dict[str, list[str]]) -> VersionInfo:
    stage = mv.current_stage if mv.current_stage and mv.current_stage != "None" else None
    return VersionInfo(
        model=mv.name,
        version=str(mv.version),
        status=str(mv.status or READY),
        aliases=aliases_by_version.get(str(mv.version), []),
        stage=stage,
        tags=dict(mv.tags or {}),
        created_at=mv.creation_timestamp / 1000 if mv.creation_timestamp else None,
        run_id=mv.run_id or None,
        source=mv.source or None,
        status_message=mv.status_message or None,
        description=mv.description or None,
    )
