"""The notification outbox: messages queued with their alert, their delivery attempts, their state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
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
        db.execute(
            "UPDATE alerts SET last_notified_at=? WHERE id=?",
            [at, alert_id],
        )


# A row is `pending` until delivered (`sent`), given up (`dead`), silenced, or cancelled (an escalation
# whose alert was acknowledged first). While a notifier sends it,
# `sending_at`/`sending_by` say so (`mark_sending`), and `record_delivery` clears them. A mark older than
# a delivery may take belongs to a sender that stopped mid-delivery: whether that page arrived is
# unknown, so the row is due again, and is sent as a possible repeat. Until then, the alert's later
# pages to that channel wait behind it (a resolve never overtakes its firing page).
_HELD = (
    "EXISTS (SELECT 1 FROM notifications e WHERE e.alert_id=n.alert_id AND e.channel=n.channel "
    "AND e.id<n.id AND e.status='pending' AND e.sending_at>?)"
)


class Outbox(StoreBase):
    def due_notifications(self, limit: int = 50, stale_after: float = 0.0) -> list[Notification]:
        """Pending rows due now, oldest first, and rows marked as being sent more than `stale_after`
        seconds ago (their sender stopped before recording the delivery)."""
        at = now()
        rows = self.query(
            "SELECT * FROM notifications n WHERE status='pending' AND ("
            f"(sending_at IS NULL AND next_attempt_at<=? AND NOT {_HELD}) OR sending_at<=?"
            ") ORDER BY next_attempt_at, id LIMIT ?",
            [at, at - stale_after, at - stale_after, limit],
        )
        return [Notification.from_row(row) for row in rows]

    def next_due_at(self, stale_after: float = 0.0) -> float | None:
        """When `due_notifications` next has something (a held row falls due with the mark it waits on)."""
        rows = self.query(
            "SELECT min(CASE WHEN sending_at IS NOT NULL THEN sending_at + ? "
            f"WHEN {_HELD} THEN NULL ELSE next_attempt_at END) AS at "
            "FROM notifications n WHERE status='pending'",
            [stale_after, now() - stale_after],
        )
        return rows[0]["at"] if rows else None

    def mark_sending(self, notification: Notification, by: str) -> Notification | None:
        """Mark a due row as being sent by `by`, right before its delivery; the row as marked, or None
        if it is no longer the row that was read (sent, silenced or marked meanwhile).

        A row that was already marked was being sent by someone who stopped before recording it: its
        `interrupted` count goes up and its alert's timeline says so (`notify_interrupted`)."""
        at = now()
        with self.write() as db:
            rows = self.query(
                "SELECT * FROM notifications WHERE id=? AND status='pending' AND sending_at IS ?",
                [notification.id, notification.sending_at],
            )
            if not rows:
                return None
            row = Notification.from_row(rows[0])
            interrupted = row.interrupted
            if row.sending_at is not None:
                interrupted += 1
                if row.alert_id:
                    sent_at = time.strftime("%H:%M:%S UTC", time.gmtime(row.sending_at))
                    insert_event(
                        db,
                        row.alert_id,
                        "notify_interrupted",
                        at=at,
                        actor=row.target,
                        note=(
                            f"{row.sending_by or 'a watcher'} stopped while sending this {row.kind} page "
                            f"({sent_at}), before recording whether it arrived: sent again, marked as a "
                            "possible repeat"
                        ),
                        data={
                            "notification": row.id,
                            "kind": row.kind,
                            "sender": row.sending_by,
                            "since": row.sending_at,
                        },
                    )
            db.execute(
                "UPDATE notifications SET sending_at=?, sending_by=?, interrupted=? WHERE id=?",
                [at, by, interrupted, row.id],
            )
        return replace(row, sending_at=at, sending_by=by, interrupted=interrupted)

    def record_delivery(
        self,
        notification: Notification,
        ok: bool,
        duration_ms: float,
        error: str | None,
        retry_at: float | None,
    ) -> None:
        """One attempt: the delivery row, the notification's new status, and an event on its alert.

        A row silenced while its delivery was under way stays silenced unless that delivery got through.
        """
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
                "UPDATE notifications SET status=CASE WHEN status IN ('silenced', 'cancelled') AND ?!='sent' "
                "THEN status "
                "ELSE ? END, attempts=?, next_attempt_at=?, sent_at=?, last_error=?, sending_at=NULL, "
                "sending_by=NULL, interrupted=max(interrupted, ?) WHERE id=?",
                [
                    status,
                    status,
                    attempts,
                    retry_at or notification.next_attempt_at,
                    at if ok else None,
                    error,
                    notification.interrupted,
                    notification.id,
                ],
            )
            if notification.alert_id:
                kind = "notified" if ok else ("notify_failed" if retry_at is not None else "notify_gave_up")
                data: dict[str, object] = {
                    "notification": notification.id,
                    "kind": notification.kind,
                    "attempt": attempts,
                }
                if notification.interrupted:
                    data["possible_repeat"] = True
                insert_event(
                    db, notification.alert_id, kind, at=at, actor=notification.target, note=error, data=data
                )

    def notifications_for(self, alert_id: int) -> list[Notification]:
        rows = self.query(
            "SELECT * FROM notifications WHERE alert_id=? ORDER BY id",
            [alert_id],
        )
        return [Notification.from_row(row) for row in rows]

    def deliveries(self, notification_id: int | None = None) -> list[DeliveryRecord]:
        if notification_id is None:
            rows = self.query(
                "SELECT * FROM deliveries ORDER BY id",
            )
        else:
            rows = self.query(
                "SELECT * FROM deliveries WHERE notification_id=? ORDER BY id",
                [notification_id],
            )
        return [DeliveryRecord.from_row(row) for row in rows]
