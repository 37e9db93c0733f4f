"""Reminders: pages again about firing alerts nobody acknowledged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_console.core.alerts.messages import alert_messages
from mlops_console.core.store import Store

if TYPE_CHECKING:
    from mlops_console.config import Settings


def remind_unacknowledged(store: Store, settings: Settings) -> int:
    """Re-notify firing alerts nobody acknowledged within `notify.renotify_after` (on every channel that
    heard of them: escalation channels once escalated); returns how many."""
    after = settings.notify.renotify_after
    if after <= 0:
        return 0
    return sum(
        store.remind(
            alert.id,
            alert_messages(settings, "reminder", alert, escalated=store.escalated_channels(alert.id)),
        )
        for alert in store.due_reminders(after)
    )
