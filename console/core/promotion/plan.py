"""Planning a promote or rollback: what would move, which guards refuse it, what gets redeployed.

Planning reads the registry (and the audit trail for the alias history) and changes nothing; the
plan is what a confirmation prompt or dialog shows, and what `Promoter.apply` carries out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_console.config import EndpointSettings, Settings
from mlops_console.core.promotion.history import alias_history, push
from mlops_console.core.promotion.target import LEGACY_STAGES, Target, resolve_target
from mlops_console.core.registry import (
    READY,
    ModelInfo,
    RegistryClient,
    RegistryNotFound,
    VersionInfo,
    alias_problem,
)
from mlops_console.core.store import Store


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
    plan, info, current = _begin("promote", settings, registry, model, alias, stage)
    if info is None:
        return plan
    target = plan.target
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
    stack, _source = alias_history(store, model, target, current, info.tags)
    plan.history = push(stack, current, plan.new_version)
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
    plan, info, current = _begin("rollback", settings, registry, model, alias, stage)
    if info is None:
        return plan
    target = plan.target
    _check_expected(plan, current, expect_current)
    stack, source = alias_history(store, model, target, current, info.tags)
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


def _begin(
    action: str,
    settings: Settings,
    registry: RegistryClient,
    model: str,
    alias: str | None,
    stage: str | None,
) -> tuple[ChangePlan, ModelInfo | None, str | None]:
    """What promote and rollback check first: the target, the model, its current version. The model is
    None when the plan cannot go on (its problems say why)."""
    target = resolve_target(settings, model, alias, stage)
    plan = ChangePlan(action, model, target, None, None)
    if not _target_valid(target, plan):
        return plan, None, None
    try:
        info = registry.get_model(model)
    except RegistryNotFound:
        plan.problems.append(f"model {model!r} does not exist")
        return plan, None, None
    current = _current_version(registry, model, target, info.aliases)
    plan.current = _version_or_none(registry, model, current)
    return plan, info, current


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
    given = str(expect_current)
    expected = None if given.lower() in ("", "none", "unset") else given.removeprefix("v")
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
