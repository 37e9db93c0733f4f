"""Rows of an alert's timeline, written inside the transaction that changes the alert."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_console.core.store.base import insert_row, now

if TYPE_CHECKING:
    import sqlite_utils


def insert_event(
    db: sqlite_utils.Database,
    alert_id: int,
    kind: str,
    at: float | None = None,
    actor: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    return insert_row(
        db,
        "alert_events",
        {
            "alert_id": alert_id,
            "at": at or now(),
            "kind": kind,
            "actor": actor,
            "note": note,
            "data": json.dumps(data) if data else None,
        },
    )
