"""Promote and roll back the way `mlops-console promote/rollback --yes` does: plan, then apply.

The CLI records a change it could not even plan (registry unreachable) and applies a plan it made
itself without re-checking it (nothing happened in between). Tests use these to drive the real
`Promoter` without a subprocess.
"""

from __future__ import annotations

from typing import Any

from mlops_console.config import Settings
from mlops_console.core.promotion import ChangeResult, Promoter
from mlops_console.core.registry import RegistryError
from mlops_console.core.store import Store


def promote(
    settings: Settings,
    store: Store,
    registry: Any,
    model: str,
    version: str | int,
    *,
    alias: str | None = None,
    stage: str | None = None,
    actor: str,
    reason: str | None = None,
    expect_current: str | int | None = None,
    **apply: Any,
) -> ChangeResult:
    promoter = Promoter(settings, store, registry)
    try:
        plan = promoter.plan_promote(model, version, alias=alias, stage=stage, expect_current=expect_current)
    except RegistryError as exc:
        return promoter.record_failure(
            "promote",
            model,
            actor=actor,
            exc=exc,
            alias=alias,
            stage=stage,
            to_version=str(version),
            reason=reason,
        )
    return promoter.apply(plan, actor=actor, reason=reason, recheck=False, **apply)


def rollback(
    settings: Settings,
    store: Store,
    registry: Any,
    model: str,
    *,
    alias: str | None = None,
    stage: str | None = None,
    actor: str,
    reason: str | None = None,
    expect_current: str | int | None = None,
    **apply: Any,
) -> ChangeResult:
    promoter = Promoter(settings, store, registry)
    try:
        plan = promoter.plan_rollback(model, alias=alias, stage=stage, expect_current=expect_current)
    except RegistryError as exc:
        return promoter.record_failure(
            "rollback", model, actor=actor, exc=exc, alias=alias, stage=stage, reason=reason
        )
    return promoter.apply(plan, actor=actor, reason=reason, recheck=False, **apply)
