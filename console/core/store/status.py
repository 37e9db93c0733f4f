"""Endpoint status and per-minute rollups, so followers and `status` see what the lease holder sees;
and what its detectors learnt, so the next lease holder continues from it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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

    def write_detector_state(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Each endpoint's detector state (`DetectedRules.to_state()`), replacing what was there."""
        if states:
            at = now()
            with self.write() as db:
                db["detector_state"].upsert_all(  # type: ignore[union-attr]
                    [
                        {"endpoint": name, "updated_at": at, "data": json.dumps(state)}
                        for name, state in states.items()
                    ],
                    pk="endpoint",
                )

    def read_detector_state(self) -> dict[str, dict[str, Any]]:
        """Endpoint name to the detector state written last (unreadable rows are left out)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.query("SELECT endpoint, data FROM detector_state"):
            try:
                data = json.loads(row["data"])
            except ValueError:
                continue
            if isinstance(data, dict):
                out[str(row["endpoint"])] = data
        return out
