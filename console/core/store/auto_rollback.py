"""Automatic rollbacks: the promotes under watch, and the one decision each may get (rolled back,
refused, cancelled by a person), claimed atomically so no promote is rolled back twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from mlops_console.core.store.audit import insert_audit
from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.events import insert_event
from mlops_console.core.store.outbox import enqueue
from mlops_console.core.store.rows import AuditEntry, OutboxMessage

DECIDING = "deciding"
"""Claimed, not finished: the registry may or may not have been asked yet."""
FINAL_STATES = ("rolled_back", "failed", "refused", "cancelled", "abandoned")


@dataclass(frozen=True, slots=True)
class AutoRollbackDecision:
    promote_id: int
    """The audit id of the promote this decision is about."""
    model: str
    alias: str
    version: str | None
    """The version that was promoted."""
    previous: str | None
    """The version before it (what a rollback restores)."""
    state: str
    """`deciding`, or one of `FINAL_STATES`."""
    alert_id: int | None
    actor: str
    """The engine that decided, or the person who cancelled."""
    decided_at: float
    finished_at: float | None
    audit_id: int | None
    note: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AutoRollbackDecision:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


class AutoRollbackTables(StoreBase):
    def latest_alias_change(self, model: str, alias: str) -> AuditEntry | None:
        """The newest successful promote or rollback of one alias: a promote is watched only while it
        is the alias's latest change."""
        rows = self.query(
            "SELECT * FROM audit WHERE model=? AND alias=? AND result='ok' "
            "AND action IN ('promote', 'rollback') ORDER BY id DESC LIMIT 1",
            [model, alias],
        )
        return AuditEntry.from_row(rows[0]) if rows else None

    def auto_rollback_decision(self, promote_id: int) -> AutoRollbackDecision | None:
        rows = self.query("SELECT * FROM auto_rollbacks WHERE promote_id=?", [promote_id])
        return AutoRollbackDecision.from_row(rows[0]) if rows else None

    def auto_rollback_decisions(self, limit: int = 100) -> list[AutoRollbackDecision]:
        rows = self.query("SELECT * FROM auto_rollbacks ORDER BY decided_at DESC LIMIT ?", [limit])
        return [AutoRollbackDecision.from_row(row) for row in rows]

    def unfinished_auto_rollbacks(self) -> list[AutoRollbackDecision]:
        """Decisions claimed by an engine that stopped before finishing them."""
        rows = self.query("SELECT * FROM auto_rollbacks WHERE state=? ORDER BY decided_at", [DECIDING])
        return [AutoRollbackDecision.from_row(row) for row in rows]

    def claim_auto_rollback(
        self, promote: AuditEntry, *, alert_id: int, owner: str, lease: str = "engine"
    ) -> bool:
        """Take the one decision about `promote`, only while `owner` holds the engine lease. False when
        the promote already has one (decided, cancelled) or the lease is someone else's."""
        at = now()
        with self.write() as db:
            held = self.query(
                "SELECT 1 FROM lease WHERE name=? AND owner=? AND expires_at>?", [lease, owner, at]
            )
            if not held:
                return False
            cursor = db.execute(
                "INSERT OR IGNORE INTO auto_rollbacks (promote_id, model, alias, version, previous, state, "
                "alert_id, actor, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    promote.id,
                    promote.model,
                    promote.alias,
                    promote.to_version,
                    promote.from_version,
                    DECIDING,
                    alert_id,
                    owner,
                    at,
                ],
            )
            return cursor.rowcount == 1

    def release_auto_rollback(self, promote_id: int) -> None:
        """Give a claim back before anything was asked of the registry (it could not be read)."""
        with self.write() as db:
            db.execute("DELETE FROM auto_rollbacks WHERE promote_id=? AND state=?", [promote_id, DECIDING])

    def finish_auto_rollback(
        self,
        promote_id: int,
        *,
        state: str,
        audit_id: int | None,
        note: str,
        messages: Sequence[OutboxMessage],
    ) -> None:
        """The decision's outcome, its page (queued with the triggering alert, so it shows on that
        alert's timeline) and the alert's timeline line, in one transaction."""
        assert state in FINAL_STATES
        at = now()
        with self.write() as db:
            db.execute(
                "UPDATE auto_rollbacks SET state=?, finished_at=?, audit_id=coalesce(?, audit_id), note=? "
                "WHERE promote_id=?",
                [state, at, audit_id, note, promote_id],
            )
            rows = self.query("SELECT alert_id FROM auto_rollbacks WHERE promote_id=?", [promote_id])
            alert_id = rows[0]["alert_id"] if rows else None
            if alert_id is not None:
                insert_event(
                    db,
                    alert_id,
                    "auto_rollback",
                    at=at,
                    actor="auto-rollback",
                    note=note,
                    data={"state": state, "promote_audit_id": promote_id, "audit_id": audit_id},
                )
            enqueue(db, alert_id, messages, at)

    def cancel_auto_rollback(self, promote: AuditEntry, *, actor: str, reason: str | None) -> int | None:
        """A person decides that `promote` is not rolled back automatically: the decision row and an
        audit row, together. The audit id, or None when the promote already has a decision."""
        at = now()
        with self.write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO auto_rollbacks (promote_id, model, alias, version, previous, state, "
                "actor, decided_at, finished_at, note) VALUES (?, ?, ?, ?, ?, 'cancelled', ?, ?, ?, ?)",
                [
                    promote.id,
                    promote.model,
                    promote.alias,
                    promote.to_version,
                    promote.from_version,
                    actor,
                    at,
                    at,
                    reason,
                ],
            )
            if cursor.rowcount != 1:
                return None
            audit_id = insert_audit(
                db,
                actor=actor,
                action="cancel_auto_rollback",
                result="ok",
                model=promote.model,
                alias=promote.alias,
                from_version=promote.from_version,
                to_version=promote.to_version,
                reason=reason,
                detail={"promote_audit_id": promote.id},
                at=at,
            )
            db.execute("UPDATE auto_rollbacks SET audit_id=? WHERE promote_id=?", [audit_id, promote.id])
            return audit_id

    def auto_rollback_audit(self, decision: AutoRollbackDecision) -> AuditEntry | None:
        """The rollback an engine started for this decision (pending if it stopped before the registry
        answered), if it got that far."""
        rows = self.query(
            "SELECT * FROM audit WHERE actor='auto-rollback' AND action='rollback' AND model=? AND alias=? "
            "AND at>=? ORDER BY id LIMIT 1",
            [decision.model, decision.alias, decision.decided_at],
        )
        return AuditEntry.from_row(rows[0]) if rows else None
