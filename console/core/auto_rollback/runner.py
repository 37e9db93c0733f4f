"""One engine's automatic rollbacks: deciding once per promote, carrying the decision out or finishing
one a stopped engine left, and the page about it. `AutoRollback.round` BLOCKS (SQLite, MLflow, deploy
hooks): the engine runs it in a worker thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_console.config import Settings
from mlops_console.core.alerts.messages import format_time
from mlops_console.core.auto_rollback.watch import Window, trigger, windows
from mlops_console.core.conditions import rule_title
from mlops_console.core.deploy import DeployOutcome
from mlops_console.core.notifier import outbox_messages
from mlops_console.core.promotion import Promoter, resolve_target, serving_endpoints
from mlops_console.core.store import Alert, AuditEntry, AutoRollbackDecision, OutboxMessage, Store

if TYPE_CHECKING:
    from mlops_console.core.promotion import ChangeResult
    from mlops_console.core.registry import RegistryClient

log = logging.getLogger("mlops_console.auto_rollback")

ACTOR = "auto-rollback"
RETRY_AFTER = 10.0
"""Seconds before a decision the registry could not be read for is tried again."""


class AutoRollback:
    """One engine's automatic rollbacks. `may_act` says whether this engine may change anything now
    (it holds the lease and the console is not read-only); the store checks the lease again when a
    decision is claimed."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        owner: str,
        may_act: Callable[[], bool],
        registry: Callable[[], RegistryClient] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner
        self.may_act = may_act
        self._registry_factory = registry
        self._registry: RegistryClient | None = None
        self._retry_at: dict[int, float] = {}
        self.rounds = 0
        """Rounds run so far, acting or not (tests wait for rounds, never for time)."""

    def registry(self) -> RegistryClient:
        if self._registry is None:
            if self._registry_factory is not None:
                self._registry = self._registry_factory()
            else:
                from mlops_console.core.registry import RegistryClient

                self._registry = RegistryClient(self.settings.registry)
        return self._registry

    def round(self, now: float | None = None) -> int:
        """Finish decisions a stopped engine left, then roll back what needs it. Returns the number of
        decisions finished in this round."""
        now = time.time() if now is None else now
        done = 0
        try:
            if self.may_act():
                done = self._round(now)
        finally:
            self.rounds += 1
        return done

    def _round(self, now: float) -> int:
        done = 0
        for decision in self.store.unfinished_auto_rollbacks():
            if self.may_act() and self._resume(decision):
                done += 1
        for window in windows(self.settings, self.store, now):
            if not window.armed or self._retry_at.get(window.promote.id, 0.0) > now:
                continue
            alert = trigger(self.settings, self.store, window)
            if alert is None or not self.may_act():
                continue
            if self._decide(window, alert):
                done += 1
        return done

    # -- deciding --------------------------------------------------------------------------------------
    def _decide(self, window: Window, alert: Alert) -> bool:
        promote = window.promote
        if not self.store.claim_auto_rollback(promote, alert_id=alert.id, owner=self.owner):
            return False
        log.warning(
            "alert #%d %s on %s fired %.0f s after the promote of %s v%s: rolling back",
            alert.id,
            alert.rule,
            alert.endpoint,
            alert.started_at - promote.at,
            window.model,
            promote.to_version,
            extra={"event": "auto_rollback", "model": window.model, "alert_id": alert.id},
        )
        decision = self.store.auto_rollback_decision(promote.id)
        assert decision is not None
        return self._carry_out(decision, alert)

    def _carry_out(self, decision: AutoRollbackDecision, alert: Alert | None) -> bool:
        """Plan and apply the rollback of a claimed decision; False if the registry could not be read
        (the claim is given back and tried again later)."""
        from mlops_console.core.registry import RegistryError

        promoter = Promoter(self.settings, self.store, self.registry())
        reason = _reason(decision, alert)
        try:
            plan = promoter.plan_rollback(
                decision.model, alias=_alias_of(decision), expect_current=decision.version or "none"
            )
        except RegistryError as exc:
            log.warning("automatic rollback of %s postponed: %s", decision.model, exc)
            self.store.release_auto_rollback(decision.promote_id)
            self._retry_at[decision.promote_id] = time.time() + RETRY_AFTER
            return False
        if plan.ok and plan.new_version != decision.previous:
            plan.problems.append(
                f"the version before the promote was v{decision.previous or '-'}, but a rollback would "
                f"restore v{plan.new_version}"
            )
        result = promoter.apply(plan, actor=ACTOR, reason=reason, recheck=False)
        state = "rolled_back" if result.changed else ("refused" if result.refused else "failed")
        self._finish(decision, alert, state, result.audit_id, result=result)
        return True

    def _resume(self, decision: AutoRollbackDecision) -> bool:
        """Finish a decision an engine claimed and did not finish (it stopped, or was killed).

        If its rollback reached the registry (the alias points to the previous version and the
        rollback's audit row exists), it is recorded and redeployed, not done again. If it did not,
        the interrupted audit row says so and the rollback is carried out now: one rollback either
        way, and no `pending` row left behind."""
        from mlops_console.core.registry import RegistryError

        alert = self.store.get_alert(decision.alert_id) if decision.alert_id is not None else None
        started = self.store.auto_rollback_audit(decision)
        try:
            current = self.registry().alias_version(decision.model, _alias_of(decision))
        except RegistryError as exc:
            log.warning("unfinished automatic rollback of %s waits for the registry: %s", decision.model, exc)
            return False
        log.warning(
            "finishing the automatic rollback of %s v%s another engine started",
            decision.model,
            decision.version,
            extra={"event": "auto_rollback_resumed", "model": decision.model},
        )
        if started is not None and current == decision.previous and current is not None:
            if started.result == "pending":
                detail = dict(started.detail or {})
                detail["resumed"] = "the registry had moved; recorded after the watcher restarted"
                self.store.update_audit(started.id, result="ok", detail=detail)
            outcomes = self._redeploy(decision, started, alert)
            self._finish(decision, alert, "rolled_back", started.id, deploys=outcomes)
            return True
        if started is not None and started.result == "pending":
            self.store.update_audit(
                started.id,
                result="failed",
                detail={"error": "interrupted before the registry was asked (the watcher stopped)"},
            )
        if current == decision.version:
            return self._carry_out(decision, alert)
        note = f"the alias was moved since (now v{current or '-'}): nothing rolled back"
        self._finish(decision, alert, "abandoned", None, note=note)
        return True

    def _redeploy(
        self, decision: AutoRollbackDecision, started: AuditEntry, alert: Alert | None
    ) -> list[DeployOutcome]:
        from mlops_console.core.deploy_fanout import redeploy

        target = resolve_target(self.settings, decision.model, _alias_of(decision), None)
        endpoints = [
            e.name for e in serving_endpoints(self.settings, decision.model, target) if e.deploy is not None
        ]
        if not endpoints or decision.previous is None:
            return []
        outcomes, _alerts = redeploy(
            self.settings,
            self.store,
            endpoints=endpoints,
            model=decision.model,
            alias=_alias_of(decision),
            audit_alias=target.key,
            version=decision.previous,
            from_version=decision.version,
            action="rollback",
            actor=ACTOR,
            reason=_reason(decision, alert),
            progress=lambda _message: None,
        )
        detail = dict(started.detail or {})
        detail["deploys"] = [o.as_dict() for o in outcomes]
        self.store.update_audit(started.id, detail=detail)
        return outcomes

    def _finish(
        self,
        decision: AutoRollbackDecision,
        alert: Alert | None,
        state: str,
        audit_id: int | None,
        *,
        result: ChangeResult | None = None,
        deploys: list[DeployOutcome] | None = None,
        note: str | None = None,
    ) -> None:
        if result is not None:
            deploys = result.deploys
            if not result.changed:
                note = result.message
        title, body, line = page(decision, alert, state, deploys or [], note, audit_id)
        endpoint = alert.endpoint if alert is not None else ""
        messages: list[OutboxMessage] = outbox_messages(
            self.settings,
            endpoint=endpoint,
            severity="critical",
            kind="auto_rollback",
            title=title,
            body=body,
        )
        self.store.finish_auto_rollback(
            decision.promote_id, state=state, audit_id=audit_id, note=line, messages=messages
        )
        log.warning("%s", line, extra={"event": "auto_rollback_" + state, "model": decision.model})


def _alias_of(decision: AutoRollbackDecision) -> str:
    return decision.alias  # aliases are stored as themselves; stages (`stage:X`) are never watched


def _reason(decision: AutoRollbackDecision, alert: Alert | None) -> str:
    if alert is None:
        return f"automatic rollback of v{decision.version}"
    return f"alert #{alert.id} {alert.rule} on {alert.endpoint}: {alert.summary}"


def page(
    decision: AutoRollbackDecision,
    alert: Alert | None,
    state: str,
    deploys: list[DeployOutcome],
    note: str | None,
    audit_id: int | None,
) -> tuple[str, str, str]:
    """Title, body and the one line for the alert's timeline of an automatic rollback's page."""
    what = f"{decision.model} {decision.alias}"
    change = f"v{decision.version or '-'} -> v{decision.previous or '-'}"
    verified = "verified" if deploys and all(d.ok for d in deploys) else None
    if deploys and verified is None:
        verified = "NOT verified"
    if state == "rolled_back":
        status = f", {verified}" if verified else ", nothing redeployed"
        title = f"[AUTO-ROLLBACK] {what}: {change}{status}"
        line = f"rolled back {what} {change}{status}"
    else:
        word = {"refused": "REFUSED", "failed": "FAILED", "abandoned": "ABANDONED"}.get(state, state.upper())
        title = f"[AUTO-ROLLBACK {word}] {what} v{decision.version or '-'}"
        line = f"automatic rollback of {what} v{decision.version or '-'} {state}: {note or ''}".rstrip(": ")
    lines = []
    if state == "rolled_back":
        lines.append(f"Rolled back {what} from v{decision.version} to v{decision.previous} automatically.")
    else:
        lines.append(f"Could not roll back {what} from v{decision.version} automatically: {note}")
        lines.append("Nothing more will be tried automatically for this promote: it needs a person.")
    if alert is not None:
        lines.append(
            f"Why: alert #{alert.id} {rule_title(alert.rule)} ({alert.rule}) on {alert.endpoint}, "
            f"firing since {format_time(alert.started_at)}."
        )
        lines.append(f"Evidence: {alert.summary}")
    for deploy in deploys:
        lines.append(f"Deploy: {deploy.summary}")
    if state == "rolled_back" and not deploys:
        lines.append("No endpoint has a deploy hook: they keep serving the promoted version until restarted.")
    if audit_id is not None:
        lines.append(f"Audit #{audit_id} (mlops-console audit --model {decision.model}).")
    return title, "\n".join(lines), line
