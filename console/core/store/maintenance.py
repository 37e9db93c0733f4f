"""Maintenance windows: no pages, reminders or escalations for alerts of matching endpoints until the
window ends. Alerts are still recorded; one still firing when the window ends pages once then.

A window's endpoints are one glob (`*`, `?`, `[...]`, `[!...]`), matched against the whole endpoint
name with SQLite's GLOB (case-sensitive), in SQL wherever a page is decided under the write lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from mlops_console.core.limits import check_silence, check_text
from mlops_console.core.store.audit import insert_audit
from mlops_console.core.store.base import StoreBase, insert_row, now
from mlops_console.core.store.events import insert_event
from mlops_console.core.store.outbox import enqueue
from mlops_console.core.store.rows import Alert, OutboxMessage

IN_WINDOW = "EXISTS (SELECT 1 FROM maintenance m WHERE m.ends_at>:at AND a.endpoint GLOB m.endpoints)"
"""SQL: alert `a`'s endpoint is under a running window (`:at` is now)."""
WITHHELD = (
    "EXISTS (SELECT 1 FROM alert_events w WHERE w.alert_id=a.id AND w.kind='maintenance') "
    "AND NOT EXISTS (SELECT 1 FROM alert_events o WHERE o.alert_id=a.id AND o.kind='maintenance_over')"
)
"""SQL: alert `a` fired inside a window (its first page withheld) and was not paged since."""
_SILENCED = "EXISTS (SELECT 1 FROM alerts s WHERE s.fingerprint=a.fingerprint AND s.silenced_until>=:at)"


def exact_glob(name: str) -> str:
    """A glob matching exactly `name` (its `*`, `?` and `[` taken literally)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def as_glob(pattern: str) -> str:
    """The pattern as SQLite's GLOB reads it: `[!...]` (fnmatch's negation, as in `[[rules]]`) is `[^...]`."""
    return pattern.replace("[!", "[^")


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: int
    endpoints: str
    reason: str | None
    created_by: str
    created_at: float
    ends_at: float
    ended_by: str | None
    ended_at: float | None

    @property
    def pattern(self) -> str:
        """The glob as it was typed (`[!...]`)."""
        return self.endpoints.replace("[^", "[!")

    def running(self, at: float | None = None) -> bool:
        return self.ends_at > (time.time() if at is None else at)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["endpoints"] = self.pattern
        return out


class MaintenanceWindows(StoreBase):
    def start_maintenance(
        self, pattern: str, seconds: float, by: str, reason: str | None = None
    ) -> MaintenanceWindow:
        """Open a window over the endpoints matching `pattern` for `seconds` (at most 30 days); audited.
        ValueError for an empty pattern, a bad duration or overlong text."""
        if not pattern.strip():
            raise ValueError("the endpoint pattern is empty")
        check_silence(seconds)
        check_text(pattern, "the endpoint pattern")
        check_text(by, "the name")
        check_text(reason, "the reason")
        at = now()
        with self.write() as db:
            row = {
                "endpoints": as_glob(pattern),
                "reason": reason,
                "created_by": by,
                "created_at": at,
                "ends_at": at + seconds,
            }
            window_id = insert_row(db, "maintenance", row)
            # Pages already queued for matching alerts would page someone who just asked for quiet; an
            # open alert whose pages are dropped counts as withheld, so it pages once after the window.
            dropped = self.query(
                "SELECT DISTINCT n.alert_id AS id FROM notifications n JOIN alerts a ON a.id=n.alert_id "
                "WHERE n.status='pending' AND a.state!='resolved' AND a.endpoint GLOB ?",
                [as_glob(pattern)],
            )
            for alert in dropped:
                insert_event(db, alert["id"], "maintenance", at=at, actor=by, data={"window": window_id})
            db.execute(
                "UPDATE notifications SET status='silenced' WHERE status='pending' "
                "AND alert_id IN (SELECT id FROM alerts WHERE endpoint GLOB ?)",
                [as_glob(pattern)],
            )
            insert_audit(
                db,
                actor=by,
                action="maintenance",
                model=None,
                reason=reason,
                result="ok",
                endpoint=pattern,
                at=at,
                detail={"window": window_id, "until": at + seconds, "seconds": seconds},
            )
        return self.maintenance_window(window_id)

    def end_maintenance(
        self, window_id: int, by: str, reason: str | None = None, after: float = 0.0
    ) -> MaintenanceWindow:
        """End a running window now (or `after` seconds from now, when it would end later); audited.
        KeyError if there is none, ValueError if it is over."""
        check_text(by, "the name")
        check_text(reason, "the reason")
        at = now()
        with self.write() as db:
            window = self.maintenance_window(window_id)
            if not window.running(at):
                raise ValueError(f"maintenance window {window_id} has already ended")
            end = min(at + max(after, 0.0), window.ends_at)
            db.execute(
                "UPDATE maintenance SET ends_at=?, ended_at=?, ended_by=? WHERE id=?",
                [end, end, by, window_id],
            )
            insert_audit(
                db,
                actor=by,
                action="maintenance_end",
                model=None,
                reason=reason,
                result="ok",
                endpoint=window.pattern,
                at=at,
                detail={"window": window_id},
            )
        return self.maintenance_window(window_id)

    def maintenance_window(self, window_id: int) -> MaintenanceWindow:
        rows = self.query("SELECT * FROM maintenance WHERE id=?", [window_id])
        if not rows:
            raise KeyError(window_id)
        return MaintenanceWindow(**rows[0])

    def maintenance_windows(
        self, running_at: float | None = None, limit: int = 100
    ) -> list[MaintenanceWindow]:
        """Windows running at `running_at` (ending soonest first), or the latest `limit` of all (None)."""
        if running_at is None:
            rows = self.query("SELECT * FROM maintenance ORDER BY created_at DESC, id DESC LIMIT ?", [limit])
        else:
            rows = self.query(
                "SELECT * FROM maintenance WHERE ends_at>? AND created_at<=? ORDER BY ends_at, id LIMIT ?",
                [running_at, running_at, limit],
            )
        return [MaintenanceWindow(**row) for row in rows]

    def in_maintenance(self, endpoint: str, at: float | None = None) -> MaintenanceWindow | None:
        """The running window (ending last) that covers this endpoint, if any."""
        rows = self.query(
            "SELECT * FROM maintenance WHERE ends_at>? AND ? GLOB endpoints ORDER BY ends_at DESC LIMIT 1",
            [now() if at is None else at, endpoint],
        )
        return MaintenanceWindow(**rows[0]) if rows else None

    def maintenance_quiet(self, alert_id: int) -> bool:
        """No page for this alert now: its endpoint is under a window, or its first page was withheld by
        one and not sent since (its resolve would announce an incident nobody heard of)."""
        rows = self.query(
            f"SELECT ({IN_WINDOW}) OR ({WITHHELD}) AS quiet FROM alerts a WHERE id=:id",
            {"id": alert_id, "at": now()},
        )
        return bool(rows and rows[0]["quiet"])

    def due_after_maintenance(self) -> list[Alert]:
        """Alerts whose first page a window withheld, still firing (unacknowledged), not silenced, and no
        longer under any window: each is paged once (`page_after_maintenance`)."""
        at = now()
        rows = self.query(
            f"SELECT * FROM alerts a WHERE state='firing' AND {WITHHELD} AND NOT {IN_WINDOW} "
            f"AND NOT {_SILENCED} ORDER BY started_at, id",
            {"at": at},
        )
        return [Alert.from_row(row, at) for row in rows]

    def page_after_maintenance(self, alert_id: int, messages: Sequence[OutboxMessage]) -> bool:
        """Queue the page a window withheld, unless, by the time the write lock is held, the alert was
        acknowledged, resolved or silenced, a window covers it again, or it was paged already."""
        at = now()
        with self.write() as db:
            rows = self.query(
                f"SELECT state, ({WITHHELD}) AS withheld, ({IN_WINDOW}) AS covered, "
                f"({_SILENCED}) AS silenced FROM alerts a WHERE id=:id",
                {"id": alert_id, "at": at},
            )
            if not rows or rows[0]["state"] != "firing" or not rows[0]["withheld"]:
                return False
            if rows[0]["covered"] or rows[0]["silenced"]:
                return False
            insert_event(db, alert_id, "maintenance_over", at=at)
            enqueue(db, alert_id, messages, at)
        return True
