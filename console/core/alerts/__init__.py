"""Alerts: the book that turns conditions into state changes (`book`), the writes that carry them to
the store (`writes`), what pages say (`messages`), reminders, escalations, and alerts fired by commands
(`external`)."""

from __future__ import annotations

from mlops_console.core.alerts.book import AlertBook, adopted_window, fingerprint
from mlops_console.core.alerts.escalation import escalate_unacknowledged
from mlops_console.core.alerts.external import open_external_alert
from mlops_console.core.alerts.maintenance import page_after_maintenance
from mlops_console.core.alerts.messages import alert_messages, render_message
from mlops_console.core.alerts.reminders import remind_unacknowledged
from mlops_console.core.alerts.timing import ADOPTED_CLEAR_PROBES, FLAP_FIRES, FLAP_SETTLE, FLAP_WINDOW
from mlops_console.core.alerts.writes import AlertWrite, DirectPageInFlight

__all__ = [
    "ADOPTED_CLEAR_PROBES",
    "FLAP_FIRES",
    "FLAP_SETTLE",
    "FLAP_WINDOW",
    "AlertBook",
    "AlertWrite",
    "DirectPageInFlight",
    "adopted_window",
    "alert_messages",
    "escalate_unacknowledged",
    "fingerprint",
    "open_external_alert",
    "page_after_maintenance",
    "remind_unacknowledged",
    "render_message",
]
