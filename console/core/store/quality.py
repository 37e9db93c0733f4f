"""Model quality in the store: each endpoint's read position in its inference log (so a restart or a
rotation neither loses nor double-counts rows), and the aggregates of each evaluation."""

from __future__ import annotations

import json
from typing import Any

from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.rows import QualityState

QUALITY_KEEP = 7 * 86400.0
"""Seconds of evaluations kept per endpoint."""


class QualityTables(StoreBase):
    def quality_state(self, endpoint: str) -> QualityState | None:
        rows = self.query("SELECT * FROM quality_state WHERE endpoint=?", [endpoint])
        if not rows:
            return None
        row = rows[0]
        return QualityState(
            endpoint=row["endpoint"],
            log=row["log"],
            offset=json.loads(row["offset"]),
            learned=json.loads(row["learned"]),
            updated_at=row["updated_at"],
        )

    def save_quality(
        self,
        endpoint: str,
        log: str,
        offset: dict[str, Any],
        learned: dict[str, Any],
        window: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        """The read position and what was learned, with the evaluation's aggregates if there was one,
        in one transaction: the position never runs ahead of what it was read for."""
        at = now() if at is None else at
        with self.write() as db:
            db.execute(
                "INSERT INTO quality_state (endpoint, log, offset, learned, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(endpoint) DO UPDATE SET log=excluded.log, offset=excluded.offset, "
                "learned=excluded.learned, updated_at=excluded.updated_at",
                [endpoint, log, json.dumps(offset), json.dumps(learned), at],
            )
            if window is not None:
                db.execute(
                    "INSERT INTO quality_windows (endpoint, model, version, evaluated_at, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [endpoint, window.get("model"), window.get("version"), at, json.dumps(window)],
                )
                db.execute(
                    "DELETE FROM quality_windows WHERE endpoint=? AND evaluated_at<?",
                    [endpoint, at - QUALITY_KEEP],
                )

    def quality_windows(self, endpoint: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest evaluations' aggregates of an endpoint, newest first."""
        rows = self.query(
            "SELECT data FROM quality_windows WHERE endpoint=? ORDER BY evaluated_at DESC LIMIT ?",
            [endpoint, limit],
        )
        return [json.loads(row["data"]) for row in rows]
