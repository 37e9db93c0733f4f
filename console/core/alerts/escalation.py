"""Escalation: an `after` channel pages about alerts nobody acknowledged in time.

Each escalation channel hears about an alert once, when it has been firing unacknowledged (and not
silenced) for the channel's `after`; from then on it also hears that alert's reminders and its resolve.
Whether an alert was escalated is read from the store, so restarts and lease handovers neither lose
nor repeat one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_console.core.alerts.messages import render_message, runbook_of
from mlops_console.core.formatting import duration
from mlops_console.core.notifier import channel_id, redact
from mlops_console.core.store import Alert, OutboxMessage, Store

if TYPE_CHECKING:
    from mlops_console.config import NotificationSettings, Settings


def escalation_message(settings: Settings, channel: NotificationSettings, alert: Alert) -> OutboxMessage:
    title, body = render_message("escalation", alert, runbook_of(settings, alert))
    body += f"\nNobody acknowledged it within {duration(channel.after)}: escalated to this channel."
    return OutboxMessage(
        kind="escalation",
        channel=channel_id(channel.template),
        target=redact(channel.template),
        severity=alert.severity,
        title=title,
        body=body,
    )


def escalate_unacknowledged(store: Store, settings: Settings) -> int:
    """Queue the escalations that are due on every escalation channel; returns how many."""
    queued = 0
    for channel in settings.notifications:
        if not channel.escalates:
            continue
        cid = channel_id(channel.template)
        for alert in store.due_escalations(cid, channel.after):
            if channel.routes(alert.endpoint, alert.severity):
                message = escalation_message(settings, channel, alert)
                queued += store.escalate(alert.id, cid, channel.after, [message])
    return queued
