"""Promote and roll back model versions: guards, the alias history, audit rows, MLflow tags, redeploys.

Every public function here BLOCKS (registry calls, then `asyncio.run` for the deploy hooks and their
verification). Call them from the CLI directly, or from a Textual thread worker
(`@work(thread=True)`), never from a thread that runs an event loop.

Promote moves an alias (or, for teams on legacy stages, a stage) to a version. Roll back moves it to
the version it pointed at before the last promote, taken from a stack that the console keeps twice:
in a registered-model tag (`mlops_console.history.<alias>`, so a fresh store can still roll back) and
implicitly in the audit trail. Rolling back pops that stack, so a second rollback goes one further.

Nothing is half-done: an audit row is written as `pending` before MLflow is asked, and becomes `ok`
only once MLflow accepted the change (else `refused` / `failed`, with the reason).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from mlops_console.config import EndpointSettings, Settings
from mlops_console.core.deploy import DeployOutcome, Probe, deploy_endpoint
from mlops_console.core.registry import (
    READY,
    RegistryClient,
    RegistryError,
    RegistryNotFound,
    RegistryNotPermitted,
    VersionInfo,
    alias_problem,
)
from mlops_console.core.store import Store

HISTORY_TAG = "mlops_console.history."
STAGE_HISTORY_TAG = "mlops_console.stage_history."
HISTORY_LIMIT = 50
LEGACY_STAGES = ("Staging", "Production", "Archived")

Progress = Callable[[str], None]
T = TypeVar("T")
_PAST = {"promote": "promoted", "rollback": "rolled back"}


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
        return HISTORY_TAG + self.alias if self.alias else STAGE_HISTORY_TAG + str(self.stage)


@dataclass
class ChangePlan:
    """What a promote or rollback would do, for a confirmation prompt or dialog."""

    action: str
    """"promote" or "rollback"."""
    model: str
    target: Target
    current: VersionInfo | None
    """The version the alias points to now (None: unset)."""
    new: VersionInfo | None
    """The version it would point to (None when that could not be determined; see `problems`)."""
    endpoints: list[str] = field(default_factory=list)
    """Endpoints serving this model and alias that will be redeployed (they have a `deploy` hook)."""
    not_redeployed: list[str] = field(default_factory=list)
    """Endpoints serving this model and alias without a deploy hook: they keep the old version."""
    problems: list[str] = field(default_factory=list)
    """Reasons the change is refused; empty when it may go ahead."""
    history: list[str] = field(default_factory=list)
    """Previous versions of the alias, oldest first, after this change."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def noop(self) -> bool:
        return (
            self.ok
            and self.current is not None
            and self.new is not None
            and self.current.version == self.new.version
        )

    @property
    def current_version(self) -> str | None:
        return self.current.version if self.current else None

    @property
    def new_version(self) -> str | None:
        return self.new.version if self.new else None

    def metric_rows(self) -> list[tuple[str, float | None, float | None]]:
        """(metric, current value, new value) for every metric either version has."""
        current = self.current.metrics if self.current else {}
        new = self.new.metrics if self.new else {}
        return [(key, current.get(key), new.get(key)) for key in sorted(set(current) | set(new))]


@dataclass
class ChangeResult:
    ok: bool
    """The change happened and every redeploy converged (or it was already in place)."""
    action: str
    model: str
    target: Target
    from_version: str | None
    to_version: str | None
    message: str
    """One line for the user."""
    changed: bool = False
    """The alias/stage really moved in MLflow."""
    refused: bool = False
    audit_id: int | None = None
    deploys: list[DeployOutcome] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_target(
    settings: Settings, model: str, alias: str | None = None, stage: str | None = None
) -> Target:
    """`--stage` wins when given; otherwise the alias, defaulting to the model's configured one."""
    if stage:
        normalized = next((s for s in LEGACY_STAGES if s.lower() == stage.lower()), stage)
        return Target(stage=normalized)
    return Target(alias=alias or settings.alias_for(model))


# -- planning ------------------------------------------------------------------------------------------
def plan_promote(
    settings: Settings,
    registry: RegistryClient,
    model: str,
    version: str | int,
    *,
    alias: str | None = None,
    stage: str | None = None,
    expect_current: str | int | None = None,
    store: Store | None = None,
) -> ChangePlan:
    """Check a promote without changing anything. Raises RegistryError only when the registry is
    unreachable or forbids reading; refusals (missing or non-READY version...) land in `problems`."""
    target = resolve_target(settings, model, alias, stage)
    plan = ChangePlan("promote", model, target, None, None)
    if not _target_valid(target, plan):
        return plan
    try:
        info = registry.get_model(model)
    except RegistryNotFound:
        plan.problems.append(f"model {model!r} does not exist")
        return plan
    current = _current_version(registry, model, target, info.aliases)
    plan.current = _version_or_none(registry, model, current)
    try:
        plan.new = registry.version(model, str(version))
    except RegistryNotFound:
        plan.problems.append(f"{model} v{version} does not exist")
    else:
        if plan.new.status != READY:
            detail = f" ({plan.new.status_message})" if plan.new.status_message else ""
            plan.problems.append(f"{model} v{version} is {plan.new.status}, not READY{detail}")
    _check_expected(plan, current, expect_current)
    _add_endpoints(settings, plan)
    stack, _source = _history(registry, store, model, target, current, info.tags)
    plan.history = _push(stack, current, plan.new_version)
    return plan


def plan_rollback(
    settings: Settings,
    store: Store | None,
    registry: RegistryClient,
    model: str,
    *,
    alias: str | None = None,
    stage: str | None = None,
    expect_current: str | int | None = None,
) -> ChangePlan:
    """Which version a rollback would restore (the one before the last promote), without changing anything."""
    target = resolve_target(settings, model, alias, stage)
    plan = ChangePlan("rollback", model, target, None, None)
    if not _target_valid(target, plan):
        return plan
    try:
        info = registry.get_model(model)
    except RegistryNotFound:
        plan.problems.append(f"model {model!r} does not exist")
        return plan
    current = _current_version(registry, model, target, info.aliases)
    plan.current = _version_or_none(registry, model, current)
    _check_expected(plan, current, expect_current)
    stack, source = _history(registry, store, model, target, current, info.tags)
    if source == "diverged":
        plan.problems.append(
            f"{target.label} of {model} was moved outside the console (now v{current}); "
            f"pick the version explicitly with `mlops-console promote {model} N`"
        )
        return plan
    if not stack:
        plan.problems.append(
            f"no previous version to roll back to: the console has no earlier "
            f"{target.label} of {model} on record"
        )
        return plan
    previous = stack[-1]
    plan.history = stack[:-1]
    try:
        plan.new = registry.version(model, previous)
    except RegistryNotFound:
        plan.problems.append(f"the previous version {model} v{previous} no longer exists")
        return plan
    if plan.new.status != READY:
        plan.problems.append(f"the previous version {model} v{previous} is {plan.new.status}, not READY")
    _add_endpoints(settings, plan)
    return plan


def _target_valid(target: Target, plan: ChangePlan) -> bool:
    if target.alias is not None:
        problem = alias_problem(target.alias)
    else:
        problem = (
            None
            if target.stage in LEGACY_STAGES
            else f"unknown stage {target.stage!r} (one of {', '.join(LEGACY_STAGES)})"
        )
    if problem:
        plan.problems.append(problem)
    return problem is None


def _current_version(
    registry: RegistryClient, model: str, target: Target, aliases: dict[str, str]
) -> str | None:
    if target.alias:
        return aliases.get(target.alias)
    return registry.stage_version(model, str(target.stage))


def _version_or_none(registry: RegistryClient, model: str, version: str | None) -> VersionInfo | None:
    if version is None:
        return None
    try:
        return registry.version(model, version)
    except RegistryNotFound:
        return None


def _check_expected(plan: ChangePlan, current: str | None, expect_current: str | int | None) -> None:
    if expect_current is None:
        return
    expected = str(expect_current)
    expected = None if expected.lower() in ("", "none", "unset") else expected.removeprefix("v")
    if expected != current:
        now = f"v{current}" if current else "unset"
        was = f"v{expected}" if expected else "unset"
        plan.problems.append(
            f"{plan.target.label} of {plan.model} changed since you looked: it is {now}, you expected {was}"
        )


def serving_endpoints(settings: Settings, model: str, target: Target) -> list[EndpointSettings]:
    """Endpoints that serve this model through this alias (or an `alias` equal to the stage name)."""
    out = []
    for endpoint in settings.endpoints:
        if endpoint.model != model:
            continue
        served = endpoint.alias or settings.alias_for(model)
        if (target.alias and served == target.alias) or (
            target.stage and served.lower() == target.stage.lower()
        ):
            out.append(endpoint)
    return out


def missing_hook_env(settings: Settings, plan: ChangePlan) -> list[str]:
    """Unset `${VAR}` references of the deploy hooks this plan runs: the change is refused before the
    alias moves, rather than leaving endpoints on the old version."""
    problems: list[str] = []
    for index, endpoint in enumerate(settings.endpoints):
        if endpoint.name in plan.endpoints:
            problems.extend(settings.missing_env(f"endpoints[{index}].deploy."))
    return problems


def _add_endpoints(settings: Settings, plan: ChangePlan) -> None:
    for endpoint in serving_endpoints(settings, plan.model, plan.target):
        (plan.endpoints if endpoint.deploy else plan.not_redeployed).append(endpoint.name)


# -- the alias history ---------------------------------------------------------------------------------
def _history(
    registry: RegistryClient,
    store: Store | None,
    model: str,
    target: Target,
    current: str | None,
    model_tags: dict[str, str],
) -> tuple[list[str], str]:
    """The stack of previous versions (oldest first) and where it came from: "tag", "audit", "none" or
    "diverged" (the console has history, but the alias was moved by someone else since)."""
    sources: list[tuple[str, list[str], str | None]] = []
    tag = _parse_tag(model_tags.get(target.tag))
    if tag is not None:
        sources.append(("tag", *tag))
    if store is not None:
        audit = audit_history(store, model, target.key)
        if audit is not None:
            sources.append(("audit", *audit))
    for name, stack, recorded_current in sources:
        if recorded_current == current:
            return stack, name
    return [], "diverged" if any(stack for _n, stack, _c in sources) else "none"


def _parse_tag(value: str | None) -> tuple[list[str], str | None] | None:
    if not value:
        return None
    try:
        data = json.loads(value)
        return [str(v) for v in data.get("previous", [])], (
            str(data["current"]) if data.get("current") else None
        )
    except (ValueError, TypeError, AttributeError):
        return None  # hand-edited or foreign tag: ignore rather than roll back to garbage


def audit_history(store: Store, model: str, target_key: str) -> tuple[list[str], str | None] | None:
    """Replay the successful promotes/rollbacks of this alias: (stack, version it was last set to)."""
    rows = store.query(
        "SELECT action, from_version, to_version FROM audit WHERE model=? AND alias=? AND result='ok' "
        "AND action IN ('promote', 'rollback') ORDER BY at, id",
        [model, target_key],
    )
    if not rows:
        return None
    stack: list[str] = []
    current: str | None = None
    for row in rows:
        if row["action"] == "promote":
            stack = _push(
                stack if current == row["from_version"] else [], row["from_version"], row["to_version"]
            )
        elif stack:
            stack = stack[:-1]
        current = row["to_version"]
    return stack, current


def _push(stack: list[str], current: str | None, new: str | None) -> list[str]:
    if current is None or current == new:
        return list(stack)
    return [*stack, current][-HISTORY_LIMIT:]


# -- doing it ------------------------------------------------------------------------------------------
def promote(
    settings: Settings,
    store: Store,
    registry: RegistryClient,
    model: str,
    version: str | int,
    *,
    alias: str | None = None,
    stage: str | None = None,
    actor: str,
    reason: str | None = None,
    expect_current: str | int | None = None,
    deploy: bool = True,
    on_progress: Progress | None = None,
    probe: Probe | None = None,
) -> ChangeResult:
    """Move the alias (or stage) to `version`, record it, redeploy and verify the endpoints. Blocking."""
    target = resolve_target(settings, model, alias, stage)
    try:
        plan = plan_promote(
            settings,
            registry,
            model,
            version,
            alias=alias,
            stage=stage,
            expect_current=expect_current,
            store=store,
        )
    except RegistryError as exc:
        return _failed_before_change(store, "promote", model, target, None, str(version), actor, reason, exc)
    return apply_plan(
        settings,
        store,
        registry,
        plan,
        actor=actor,
        reason=reason,
        deploy=deploy,
        on_progress=on_progress,
        probe=probe,
        recheck=False,
    )


def rollback(
    settings: Settings,
    store: Store,
    registry: RegistryClient,
    model: str,
    *,
    alias: str | None = None,
    stage: str | None = None,
    actor: str,
    reason: str | None = None,
    expect_current: str | int | None = None,
    deploy: bool = True,
    on_progress: Progress | None = None,
    probe: Probe | None = None,
) -> ChangeResult:
    """Move the alias back to the version before the last promote, record, redeploy, verify. Blocking."""
    target = resolve_target(settings, model, alias, stage)
    try:
        plan = plan_rollback(
            settings, store, registry, model, alias=alias, stage=stage, expect_current=expect_current
        )
    except RegistryError as exc:
        return _failed_before_change(store, "rollback", model, target, None, None, actor, reason, exc)
    return apply_plan(
        settings,
        store,
        registry,
        plan,
        actor=actor,
        reason=reason,
        deploy=deploy,
        on_progress=on_progress,
        probe=probe,
        recheck=False,
    )


def apply_plan(
    settings: Settings,
    store: Store,
    registry: RegistryClient,
    plan: ChangePlan,
    *,
    actor: str,
    reason: str | None = None,
    deploy: bool = True,
    on_progress: Progress | None = None,
    probe: Probe | None = None,
    recheck: bool = True,
) -> ChangeResult:
    """Carry out a plan (from `plan_promote`/`plan_rollback`, e.g. after a confirmation dialog).

    The guards are checked again against the registry right before the change, so a plan that went
    stale while the user read it is refused instead of overwriting someone else's promote.
    """
    say = on_progress or (lambda _msg: None)
    base = {
        "actor": actor,
        "action": plan.action,
        "model": plan.model,
        "alias": plan.target.key,
        "from_version": plan.current_version,
        "to_version": plan.new_version,
        "reason": reason,
    }
    if recheck and plan.ok and plan.new is not None:
        try:
            plan = _replan(settings, store, registry, plan)
        except RegistryError as exc:
            return _failed_before_change(
                store,
                plan.action,
                plan.model,
                plan.target,
                plan.current_version,
                plan.new_version,
                actor,
                reason,
                exc,
            )
        base.update(from_version=plan.current_version, to_version=plan.new_version)
    problems = plan.problems or (missing_hook_env(settings, plan) if deploy else [])
    if problems:
        audit_id = store.add_audit(**base, result="refused", detail={"problems": problems})
        return ChangeResult(
            False,
            plan.action,
            plan.model,
            plan.target,
            plan.current_version,
            plan.new_version,
            "; ".join(problems),
            refused=True,
            audit_id=audit_id,
        )
    assert plan.new is not None
    new = plan.new.version
    if plan.noop:
        return ChangeResult(
            True,
            plan.action,
            plan.model,
            plan.target,
            new,
            new,
            f"{plan.target.label} of {plan.model} already points to v{new}; nothing to do",
        )

    audit_id = store.add_audit(**base, result="pending", detail={"endpoints": plan.endpoints})
    say(f"moving {plan.target.label} of {plan.model}: v{plan.current_version or '-'} -> v{new}")
    started = time.monotonic()
    try:
        if plan.target.alias:
            registry.set_alias(plan.model, plan.target.alias, new)
        else:
            registry.transition_stage(plan.model, new, str(plan.target.stage))
    except RegistryError as exc:
        refused = isinstance(exc, RegistryNotPermitted)
        store.update_audit(audit_id, result="refused" if refused else "failed", detail={"error": str(exc)})
        return ChangeResult(
            False,
            plan.action,
            plan.model,
            plan.target,
            plan.current_version,
            new,
            str(exc),
            refused=refused,
            audit_id=audit_id,
        )

    detail: dict[str, Any] = {
        "endpoints": plan.endpoints,
        "history": plan.history,
        "registry_seconds": round(time.monotonic() - started, 3),
    }
    warnings = _write_tags(registry, plan, actor, reason)
    if plan.not_redeployed:
        warnings.append(
            f"not redeployed (no deploy hook): {', '.join(plan.not_redeployed)} keep serving "
            f"v{plan.current_version or '?'} until restarted"
        )
    if plan.endpoints and not deploy:
        warnings.append(
            f"not redeployed (--no-deploy): {', '.join(plan.endpoints)} keep serving "
            f"v{plan.current_version or '?'} until redeployed"
        )
    detail["warnings"] = warnings
    store.update_audit(audit_id, result="ok", detail=detail)
    result = ChangeResult(
        True,
        plan.action,
        plan.model,
        plan.target,
        plan.current_version,
        new,
        f"{_PAST[plan.action]} {plan.model}: {plan.target.label} v{plan.current_version or '-'} -> v{new}",
        changed=True,
        audit_id=audit_id,
        warnings=warnings,
    )
    for warning in warnings:
        say(f"warning: {warning}")
    if deploy and plan.endpoints:
        _deploy_all(settings, store, plan, result, detail, actor, reason, say, probe)
    return result


def _replan(settings: Settings, store: Store, registry: RegistryClient, plan: ChangePlan) -> ChangePlan:
    """Re-check a plan; the version the user saw becomes the expected current one."""
    expected = plan.current_version or "none"
    if plan.action == "promote":
        assert plan.new is not None
        fresh = plan_promote(
            settings,
            registry,
            plan.model,
            plan.new.version,
            alias=plan.target.alias,
            stage=plan.target.stage,
            expect_current=expected,
            store=store,
        )
    else:
        fresh = plan_rollback(
            settings,
            store,
            registry,
            plan.model,
            alias=plan.target.alias,
            stage=plan.target.stage,
            expect_current=expected,
        )
        if fresh.ok and fresh.new_version != plan.new_version:
            fresh.problems.append(
                f"the rollback target changed from v{plan.new_version} to v{fresh.new_version}"
            )
    return fresh


def _write_tags(registry: RegistryClient, plan: ChangePlan, actor: str, reason: str | None) -> list[str]:
    """MLflow stays the source of truth: who moved what, when, why, plus the alias history."""
    assert plan.new is not None
    at = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {
        "promoted_by": actor,
        "promoted_at": at,
        "promoted_action": plan.action,
        "promoted_target": plan.target.label,
        "promoted_from": plan.current_version or "",
        "promoted_reason": reason or "",
    }
    history = json.dumps({"current": plan.new.version, "previous": plan.history, "by": actor, "at": at})
    warnings = []
    try:
        registry.set_version_tags(plan.model, plan.new.version, tags)
        registry.set_model_tag(plan.model, plan.target.tag, history)
    except RegistryError as exc:
        # The alias did move; a missing tag only costs the fresh-store rollback, so report, don't undo.
        warnings.append(f"alias moved, but writing the MLflow tags failed: {exc}")
    return warnings


def _deploy_all(
    settings: Settings,
    store: Store,
    plan: ChangePlan,
    result: ChangeResult,
    detail: dict[str, Any],
    actor: str,
    reason: str | None,
    say: Progress,
    probe: Probe | None,
) -> None:
    assert plan.new is not None
    endpoints = [settings.endpoint(name) for name in plan.endpoints]
    label = plan.target.alias or str(plan.target.stage)

    async def run_all() -> list[DeployOutcome]:
        return list(
            await asyncio.gather(
                *(
                    deploy_endpoint(
                        endpoint,
                        model=plan.model,
                        alias=label,
                        version=plan.new.version,  # type: ignore[union-attr]
                        extra={
                            "action": plan.action,
                            "actor": actor,
                            "from_version": plan.current_version or "",
                        },
                        probe=probe,
                        progress=say,
                    )
                    for endpoint in endpoints
                )
            )
        )

    outcomes = _run_coroutine(run_all)
    result.deploys = outcomes
    for outcome in outcomes:
        store.add_audit(
            actor=actor,
            action="deploy",
            result="ok" if outcome.ok else "failed",
            model=plan.model,
            alias=plan.target.key,
            from_version=plan.current_version,
            to_version=plan.new.version,
            reason=reason,
            endpoint=outcome.endpoint,
            detail=outcome.as_dict(),
        )
        if not outcome.ok:
            from mlops_console.core.alerts import open_external_alert

            summary = (
                f"deploy of {plan.model} v{plan.new.version} to {outcome.endpoint} did not converge"
                f" ({outcome.verify.error if outcome.verify else outcome.hook.error})"
            )
            result.alert_ids.append(
                open_external_alert(
                    store,
                    settings,
                    rule="deploy_not_converged",
                    endpoint=outcome.endpoint,
                    model=plan.model,
                    version=plan.new.version,
                    severity="critical",
                    summary=summary,
                )
            )
    detail["deploys"] = [o.as_dict() for o in outcomes]
    store.update_audit(result.audit_id or 0, detail=detail)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        result.ok = False
        result.message += "; but " + "; ".join(o.summary for o in failed)
        result.message += f" (alert raised: #{', #'.join(map(str, result.alert_ids))})"
    else:
        result.message += "; " + "; ".join(o.summary for o in outcomes)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run`, also when a careless caller already runs a loop in this thread (it then blocks it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _failed_before_change(
    store: Store,
    action: str,
    model: str,
    target: Target,
    from_version: str | None,
    to_version: str | None,
    actor: str,
    reason: str | None,
    exc: RegistryError,
) -> ChangeResult:
    refused = isinstance(exc, RegistryNotPermitted)
    audit_id = store.add_audit(
        actor=actor,
        action=action,
        model=model,
        alias=target.key,
        from_version=from_version,
        to_version=to_version,
        reason=reason,
        result="refused" if refused else "failed",
        detail={"error": str(exc)},
    )
    return ChangeResult(
        False, action, model, target, from_version, to_version, str(exc), refused=refused, audit_id=audit_id
    )
