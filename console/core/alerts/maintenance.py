"""The page a maintenance window withheld: an alert that fired during the window and still fires (and
nobody acknowledged) when it ends pages once then, as Alertmanager does when a silence expires."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_console.core.alerts.messages import alert_messages
from mlops_console.core.store import Store

if TYPE_CHECKING:
    from mlops_console.config import Settings

AFTER_MAINTENANCE = "The maintenance window over it has ended and it is still firing."


def page_after_maintenance(store: Store, settings: Settings) -> int:
    """Queue the withheld first page of every alert that outlived its window; returns how many."""
    return sum(
        store.page_after_maintenance(alert.id, alert_messages(settings, "firing", alert, AFTER_MAINTENANCE))
        for alert in store.due_after_maintenance()
    )
