"""Read-only queries behind the shift report: what happened to alerts and aliases over a span of time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_console.core.store.base import StoreBase
from mlops_console.core.store.rows import Alert, AlertEvent, AuditEntry


class ShiftQueries(StoreBase):
    def alerts_in_span(self, start: float, end: float) -> list[Alert]:
        """Alerts that fired in [start, end) or were still open at `start`, oldest first."""
        rows = self.query(
            "SELECT * FROM alerts WHERE started_at < ? AND (started_at >= ? OR resolved_at IS NULL "
            "OR resolved_at >= ?) ORDER BY started_at, id",
            [end, start, start],
        )
        return [Alert.from_row(row, end) for row in rows]

    def events_of(self, alert_ids: Sequence[int], kinds: Sequence[str]) -> list[AlertEvent]:
        """The events of those kinds of those alerts, in time order."""
        out: list[AlertEvent] = []
        ids = list(alert_ids)
        # Chunked: SQLite caps the number of bound parameters.
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            kind_marks = ",".join("?" * len(kinds))
            rows = self.query(
                f"SELECT * FROM alert_events WHERE alert_id IN ({marks}) AND kind IN ({kind_marks}) "
                "ORDER BY at, id",
                [*chunk, *kinds],
            )
            out.extend(AlertEvent.from_row(row) for row in rows)
        out.sort(key=lambda e: (e.at, e.id))
        return out

    def audit_in_span(self, start: float, end: float, actions: Sequence[str]) -> list[AuditEntry]:
        """Audit rows of those actions in [start, end), oldest first."""
        marks = ",".join("?" * len(actions))
        rows = self.query(
            f"SELECT * FROM audit WHERE at >= ? AND at < ? AND action IN ({marks}) ORDER BY at, id",
            [start, end, *actions],
        )
        return [AuditEntry.from_row(row) for row in rows]

    def silences_running(self, at: float) -> list[dict[str, Any]]:
        """One row per silenced fingerprint whose silence lasts past `at`: the alert that carries the
        latest silence, with `silenced_until` and `silenced_by`."""
        return self.query(
            "SELECT id, fingerprint, rule, endpoint, model, silenced_until, silenced_by FROM alerts a "
            "WHERE silenced_until > ? AND id = (SELECT b.id FROM alerts b WHERE b.fingerprint=a.fingerprint "
            "ORDER BY b.silenced_until DESC, b.id DESC LIMIT 1) ORDER BY silenced_until, id",
            [at],
        )
