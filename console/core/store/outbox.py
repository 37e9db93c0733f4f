"""The notification outbox: messages queued with their alert, their delivery attempts, their state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlops_console.core.store.base import StoreBase, insert_row, now
from mlops_console.core.store.events import insert_event
from mlops_console.core.store.rows import DeliveryRecord, Notification, OutboxMessage

if TYPE_CHECKING:
    import sqlite_utils


def enqueue(
    db: sqlite_utils.Database, alert_id: int | None, messages: Sequence[OutboxMessage], at: float
) -> None:
    """Queue messages for the notifier. One with `delivered_at` was already sent directly (while the
    store was unwritable): it is recorded as sent, with its delivery, and never resent."""
    if not messages:
        return
    for m in messages:
        delivered_at = m.delivered_at
        row = {
            "kind": m.kind,
            "channel": m.channel,
            "target": m.target,
            "severity": m.severity,
            "title": m.title,
            "body": m.body,
            "alert_id": alert_id,
            "status": "pending" if delivered_at is None else "sent",
            "attempts": 0 if delivered_at is None else 1,
            "next_attempt_at": at,
            "created_at": at,
            "sent_at": delivered_at,
        }
        notification_id = insert_row(db, "notifications", row)
        if delivered_at is None:
            continue
        insert_row(
            db,
            "deliveries",
            {
                "notification_id": notification_id,
                "at": delivered_at,
                "ok": 1,
                "duration_ms": m.duration_ms,
                "error": None,
            },
        )
        if alert_id is not None:
            insert_event(
                db,
                alert_id,
                "notified",
                at=delivered_at,
                actor=m.target,
                note="sent directly: the alert store was unwritable",
                data={"notification": notification_id, "kind": m.kind, "attempt": 1, "direct": True},
            )
    if alert_id is not None:
        db.execute("UPDATE alerts SET last_notified_at=? WHERE id=?", [at, alert_id])


class Outbox(StoreBase):
    def due_notifications(self, limit: int = 50) -> list[Notification]:
        rows = self.query(
            "SELECT * FROM notifications WHERE status='pending' AND next_attempt_at<=? "
            "ORDER BY next_attempt_at, id LIMIT ?",
            [now(), limit],
        )
        return [Notification.from_row(row) for row in rows]

    def next_due_at(self) -> float | None:
        rows = self.query("SELECT min(next_attempt_at) AS at FROM notifications WHERE status='pending'")
        return rows[0]["at"] if rows else None

    def record_delivery(
        self,
        notification: Notification,
        ok: bool,
        duration_ms: float,
        error: str | None,
        retry_at: float | None,
    ) -> None:
        """One attempt: the delivery row, the notification's new status, and an event on its alert."""
        at = now()
        attempts = notification.attempts + 1
        status = "sent" if ok else ("pending" if retry_at is not None else "dead")
        with self.write() as db:
            insert_row(
                db,
                "deliveries",
                {
                    "notification_id": notification.id,
                    "at": at,
                    "ok": int(ok),
                    "duration_ms": duration_ms,
                    "error": error,
                },
            )
            db.execute(
                "UPDATE notifications SET status=?, attempts=?, next_attempt_at=?, sent_at=?, last_error=? "
                "WHERE id=?",
                [
                    status,
                    attempts,
                    retry_at or notification.next_attempt_at,
                    at if ok else None,
                    error,
                    notification.id,
                ],
            )
            if notification.alert_id:
                kind = "notified" if ok else ("notify_failed" if retry_at is not None else "notify_gave_up")
                insert_event(
                    db,
                    notification.alert_id,
                    kind,
                    at=at,
                    actor=notification.target,
                    note=error,
                    data={"notification": notification.id, "kind": notification.kind, "attempt": attempts},
                )

    def notifications_for(self, alert_id: int) -> list[Notification]:
        rows = self.query("SELECT * FROM notifications WHERE alert_id=? ORDER BY id", [alert_id])
        return [Notification.from_row(row) for row in rows]

    def deliveries(self, notification_id: int | None = None) -> list[DeliveryRecord]:
        if notification_id is None:
            rows = self.query("SELECT * FROM deliveries ORDER BY id")
        else:
            rows = self.query(
                "SELECT * FROM deliveries WHERE notification_id=? ORDER BY id", [notification_id]
            )
        return [DeliveryRecord.from_row(row) for row in rows]
