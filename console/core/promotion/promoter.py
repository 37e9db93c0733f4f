"""Carrying out a plan: guards checked again, the audit row, the alias moved, MLflow tags, redeploys.

`Promoter.apply` BLOCKS (registry calls, then `asyncio.run` for the deploy hooks and their
verification). Call it from the CLI directly, or from a Textual thread worker
(`@work(thread=True)`), never from a thread that runs an event loop.

Nothing is half-done: an audit row is written as `pending` before MLflow is asked, and becomes `ok`
only once MLflow accepted the change (else `refused` / `failed`, with the reason).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops_console.config import Settings
from mlops_console.core.deploy import DeployOutcome, Probe
from mlops_console.core.deploy_fanout import redeploy
from mlops_console.core.promotion.plan import ChangePlan, missing_hook_env, plan_promote, plan_rollback
from mlops_console.core.promotion.target import Target, resolve_target
from mlops_console.core.registry import RegistryClient, RegistryError, RegistryNotPermitted
from mlops_console.core.store import Store

Progress = Callable[[str], None]
_PAST = {"promote": "promoted", "rollback": "rolled back"}


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


class Promoter:
    """Plans and applies promotes and rollbacks against one registry, recording them in one store.

    The CLI and the TUI both plan, show the plan, and apply it; a plan that cannot even be made
    (registry unreachable) is recorded with `record_failure`.
    """

    def __init__(self, settings: Settings, store: Store, registry: RegistryClient) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry

    # -- planning --------------------------------------------------------------------------------------
    def plan_promote(
        self,
        model: str,
        version: str | int,
        *,
        alias: str | None = None,
        stage: str | None = None,
        expect_current: str | int | None = None,
    ) -> ChangePlan:
        """See `plan.plan_promote`: RegistryError only when the registry cannot be read."""
        return plan_promote(
            self.settings,
            self.registry,
            model,
            version,
            alias=alias,
            stage=stage,
            expect_current=expect_current,
            store=self.store,
        )

    def plan_rollback(
        self,
        model: str,
        *,
        alias: str | None = None,
        stage: str | None = None,
        expect_current: str | int | None = None,
    ) -> ChangePlan:
        """See `plan.plan_rollback`: RegistryError only when the registry cannot be read."""
        return plan_rollback(
            self.settings,
            self.store,
            self.registry,
            model,
            alias=alias,
            stage=stage,
            expect_current=expect_current,
        )

    def record_failure(
        self,
        action: str,
        model: str,
        *,
        actor: str,
        exc: RegistryError,
        alias: str | None = None,
        stage: str | None = None,
        to_version: str | None = None,
        reason: str | None = None,
    ) -> ChangeResult:
        """A change that could not even be planned (registry unreachable, not permitted): audited."""
        target = resolve_target(self.settings, model, alias, stage)
        return self._failed_before_change(action, model, target, None, to_version, actor, reason, exc)

    # -- doing it --------------------------------------------------------------------------------------
    def apply(
        self,
        plan: ChangePlan,
        *,
        actor: str,
        reason: str | None = None,
        deploy: bool = True,
        on_progress: Progress | None = None,
        probe: Probe | None = None,
        recheck: bool = True,
    ) -> ChangeResult:
        """Carry out a plan (e.g. after a confirmation dialog). Blocking.

        With `recheck`, the guards are checked again against the registry right before the change, so
        a plan that went stale while the user read it is refused instead of overwriting someone else's
        promote.
        """
        store = self.store
        say = on_progress or (lambda _msg: None)
        base: dict[str, Any] = {
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
                plan = self._replan(plan)
            except RegistryError as exc:
                return self._failed_before_change(
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
        problems = plan.problems or (missing_hook_env(self.settings, plan) if deploy else [])
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
                self.registry.set_alias(plan.model, plan.target.alias, new)
            else:
                self.registry.transition_stage(plan.model, new, str(plan.target.stage))
        except RegistryError as exc:
            refused = isinstance(exc, RegistryNotPermitted)
            store.update_audit(
                audit_id, result="refused" if refused else "failed", detail={"error": str(exc)}
            )
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
        warnings = self._write_tags(plan, actor, reason)
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
            f"{_PAST[plan.action]} {plan.model}: {plan.target.label} "
            f"v{plan.current_version or '-'} -> v{new}",
            changed=True,
            audit_id=audit_id,
            warnings=warnings,
        )
        for warning in warnings:
            say(f"warning: {warning}")
        if deploy and plan.endpoints:
            self._redeploy(plan, result, detail, actor, reason, say, probe)
        return result

    def _replan(self, plan: ChangePlan) -> ChangePlan:
        """Re-check a plan; the version the user saw becomes the expected current one."""
        expected = plan.current_version or "none"
        if plan.action == "promote":
            assert plan.new is not None
            return self.plan_promote(
                plan.model,
                plan.new.version,
                alias=plan.target.alias,
                stage=plan.target.stage,
                expect_current=expected,
            )
        fresh = self.plan_rollback(
            plan.model, alias=plan.target.alias, stage=plan.target.stage, expect_current=expected
        )
        if fresh.ok and fresh.new_version != plan.new_version:
            fresh.problems.append(
                f"the rollback target changed from v{plan.new_version} to v{fresh.new_version}"
            )
        return fresh

    def _write_tags(self, plan: ChangePlan, actor: str, reason: str | None) -> list[str]:
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
            self.registry.set_version_tags(plan.model, plan.new.version, tags)
            self.registry.set_model_tag(plan.model, plan.target.tag, history)
        except RegistryError as exc:
            # The alias did move; a missing tag only costs the fresh-store rollback, so report, don't undo.
            warnings.append(f"alias moved, but writing the MLflow tags failed: {exc}")
        return warnings

    def _redeploy(
        self,
        plan: ChangePlan,
        result: ChangeResult,
        detail: dict[str, Any],
        actor: str,
        reason: str | None,
        say: Progress,
        probe: Probe | None,
    ) -> None:
        assert plan.new is not None
        outcomes, alert_ids = redeploy(
            self.settings,
            self.store,
            endpoints=plan.endpoints,
            model=plan.model,
            alias=plan.target.alias or str(plan.target.stage),
            audit_alias=plan.target.key,
            version=plan.new.version,
            from_version=plan.current_version,
            action=plan.action,
            actor=actor,
            reason=reason,
            progress=say,
            probe=probe,
        )
        result.deploys, result.alert_ids = outcomes, alert_ids
        detail["deploys"] = [o.as_dict() for o in outcomes]
        self.store.update_audit(result.audit_id or 0, detail=detail)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            result.ok = False
            result.message += "; but " + "; ".join(o.summary for o in failed)
            result.message += f" (alert raised: #{', #'.join(map(str, result.alert_ids))})"
        else:
            result.message += "; " + "; ".join(o.summary for o in outcomes)

    def _failed_before_change(
        self,
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
        audit_id = self.store.add_audit(
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
            False,
            action,
            model,
            target,
            from_version,
            to_version,
            str(exc),
            refused=refused,
            audit_id=audit_id,
        )
