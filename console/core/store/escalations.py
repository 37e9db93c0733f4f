"""Escalations: which alerts an escalation channel (`[[notifications]] after`) has heard about.

The store is the record: an `escalated` event per alert and channel, written with the page in one
transaction, so a restarted watcher or the next lease holder escalates each alert once per channel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.events import insert_event
from mlops_console.core.store.maintenance import IN_WINDOW, WITHHELD
from mlops_console.core.store.outbox import enqueue
from mlops_console.core.store.rows import Alert, OutboxMessage

_SILENCED = "EXISTS (SELECT 1 FROM alerts s WHERE s.fingerprint=a.fingerprint AND s.silenced_until>=:at)"
_PAGED_AT = (
    "coalesce((SELECT max(o.at) FROM alert_events o WHERE o.alert_id=a.id AND o.kind='maintenance_over'), "
    "a.started_at)"
)
"""When the first line was paged: when the alert fired, or when the window that withheld it ended."""
_ESCALATED = (
    "EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id=a.id AND e.kind='escalated' "
    "AND json_extract(e.data, '$.channel')=:channel)"
)


class Escalations(StoreBase):
    def due_escalations(self, channel: str, after: float) -> list[Alert]:
        """Alerts firing (not acknowledged, not resolved) for more than `after` seconds since their first
        page (a maintenance window may have withheld it until it ended), not silenced or under a window,
        that were not escalated to `channel` yet."""
        at = now()
        rows = self.query(
            f"SELECT * FROM alerts a WHERE state='firing' AND {_PAGED_AT}<:since "
            f"AND NOT {_SILENCED} AND NOT {_ESCALATED} AND NOT {IN_WINDOW} AND NOT ({WITHHELD}) "
            "ORDER BY started_at, id",
            {"since": at - after, "at": at, "channel": channel},
        )
        return [Alert.from_row(row, at) for row in rows]

    def escalate(self, alert_id: int, channel: str, after: float, messages: Sequence[OutboxMessage]) -> bool:
        """Queue an alert's escalation to `channel`, unless, by the time the write lock is held, it was
        acknowledged, resolved, silenced or already escalated there (by another process since it was
        found due). True if the escalation was queued."""
        at = now()
        with self.write() as db:
            rows = self.query(
                f"SELECT state, {_SILENCED} AS silenced, {_ESCALATED} AS escalated, {IN_WINDOW} AS covered "
                "FROM alerts a WHERE id=:id",
                {"id": alert_id, "at": at, "channel": channel},
            )
            if not rows or rows[0]["state"] != "firing":
                return False
            if rows[0]["silenced"] or rows[0]["escalated"] or rows[0]["covered"]:
                return False
            target = messages[0].target if messages else None
            insert_event(
                db, alert_id, "escalated", at=at, actor=target, data={"channel": channel, "after": after}
            )
            enqueue(db, alert_id, messages, at)
        return True

    def escalated_channels(self, alert_id: int) -> frozenset[str]:
        """The ids of the channels this alert was escalated to."""
        rows = self.query(
            "SELECT data FROM alert_events WHERE alert_id=? AND kind='escalated'",
            [alert_id],
        )
        return frozenset(json.loads(row["data"])["channel"] for row in rows if row["data"])
