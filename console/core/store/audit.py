"""The audit trail: who promoted, rolled back, deployed, acknowledged or silenced what, when, why."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_console.core.store.base import StoreBase, insert_row, now
from mlops_console.core.store.rows import AliasChange, AuditEntry

if TYPE_CHECKING:
    import sqlite_utils


def insert_audit(
    db: sqlite_utils.Database,
    *,
    actor: str,
    action: str,
    result: str,
    model: str | None = None,
    alias: str | None = None,
    from_version: str | None = None,
    to_version: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    alert_id: int | None = None,
    endpoint: str | None = None,
    at: float | None = None,
) -> int:
    return insert_row(
        db,
        "audit",
        {
            "at": at or now(),
            "actor": actor,
            "action": action,
            "model": model,
            "alias": alias,
            "from_version": from_version,
            "to_version": to_version,
            "reason": reason,
            "result": result,
            "detail": json.dumps(detail) if detail else None,
            "alert_id": alert_id,
            "endpoint": endpoint,
        },
    )


class AuditTrail(StoreBase):
    def add_audit(
        self,
        *,
        actor: str,
        action: str,
        result: str,
        model: str | None = None,
        alias: str | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        alert_id: int | None = None,
        endpoint: str | None = None,
        at: float | None = None,
    ) -> int:
        """Append one audit row; returns its id."""
        with self.write() as db:
            return insert_audit(
                db,
                actor=actor,
                action=action,
                result=result,
                model=model,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                reason=reason,
                detail=detail,
                alert_id=alert_id,
                endpoint=endpoint,
                at=at,
            )

    def update_audit(
        self, audit_id: int, result: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        with self.write() as db:
            if result is not None:
                db.execute("UPDATE audit SET result=? WHERE id=?", [result, audit_id])
            if detail is not None:
                db.execute("UPDATE audit SET detail=? WHERE id=?", [json.dumps(detail), audit_id])

    def list_audit(
        self,
        model: str | None = None,
        action: str | None = None,
        limit: int = 200,
        endpoint: str | None = None,
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("model", model), ("action", action), ("endpoint", endpoint)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [AuditEntry.from_row(row) for row in self.query(sql, params)]

    def alias_changes(self, model: str, alias: str) -> list[AliasChange]:
        """The successful promotes and rollbacks of one alias (or `stage:<Stage>`), oldest first."""
        rows = self.query(
            "SELECT action, from_version, to_version FROM audit WHERE model=? AND alias=? AND result='ok' "
            "AND action IN ('promote', 'rollback') ORDER BY at, id",
            [model, alias],
        )
        return [AliasChange(**row) for row in rows]

    def latest_change_id(self) -> int:
        """Id of the newest promote or rollback (0: none yet): a new one makes served versions stale."""
        rows = self.query("SELECT max(id) AS id FROM audit WHERE action IN ('promote', 'rollback')")
        return int(rows[0]["id"] or 0)
