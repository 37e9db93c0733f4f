"""Endpoint status and per-minute rollups, so followers and `status` see what the lease holder sees."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.rows import Rollup


class EndpointStatus(StoreBase):
    def write_status(self, rows: Sequence[dict[str, Any]], engine: dict[str, Any] | None = None) -> None:
        """Endpoint snapshots (as JSON documents), and the writing engine's health (`owner`, `state`,
        `reason`)."""
        at = now()
        with self.write() as db:
            db["endpoint_status"].upsert_all(  # type: ignore[union-attr]
                [{"name": r["name"], "updated_at": at, "data": json.dumps(r)} for r in rows], pk="name"
            )
            if engine is not None:
                db.execute("DELETE FROM engine_health WHERE owner!=?", [engine["owner"]])
                db["engine_health"].upsert({**engine, "updated_at": at}, pk="owner")  # type: ignore[union-attr]

    def read_status(self) -> list[dict[str, Any]]:
        """The endpoint snapshots the lease holder wrote, as JSON documents with their `updated_at`."""
        return [
            json.loads(row["data"]) | {"updated_at": row["updated_at"]}
            for row in self.query("SELECT * FROM endpoint_status ORDER BY name")
        ]

    def write_rollups(self, rows: Sequence[Rollup]) -> None:
        if rows:
            with self.write() as db:
                db["rollups"].upsert_all(  # type: ignore[union-attr]
                    [row.as_dict() for row in rows], pk=("endpoint", "minute")
                )

    def rollups(self, endpoint: str, since: float) -> list[Rollup]:
        rows = self.query(
            "SELECT * FROM rollups WHERE endpoint=? AND minute>=? ORDER BY minute",
            [endpoint, int(since // 60)],
        )
        return [Rollup.from_row(row) for row in rows]
