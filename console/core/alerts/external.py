"""Alerts that no probe rule raises (a deploy that did not converge): fired by a command, resolved by
the engine once the endpoint is healthy again."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from mlops_console.core.alerts.book import fingerprint
from mlops_console.core.alerts.messages import alert_messages
from mlops_console.core.store import NewAlert, OutboxMessage, Store

if TYPE_CHECKING:
    from mlops_console.config import Settings


def open_external_alert(
    store: Store,
    settings: Settings,
    *,
    rule: str,
    endpoint: str,
    model: str | None,
    version: str | None,
    severity: str,
    summary: str,
) -> int:
    """Fire the alert and queue its pages, or return the open alert of the same rule on the endpoint. A
    running engine picks it up from the store and resolves it once the endpoint is healthy again."""
    alert = NewAlert(
        fingerprint=fingerprint(rule, endpoint, model),
        rule=rule,
        endpoint=endpoint,
        model=model,
        version=version,
        severity=severity,
        summary=summary,
        started_at=time.time(),
        runbook=settings.runbook_for(rule, endpoint) or "",
    )
    silenced = store.silenced_until(alert.fingerprint) is not None
    window = None if silenced else store.in_maintenance(endpoint)

    def messages(alert_id: int) -> list[OutboxMessage]:
        if silenced or window:
            return []
        return alert_messages(settings, "firing", replace(alert, id=alert_id))

    # One incident, one alert: while the same rule is open on the endpoint (a second deploy failing
    # before the endpoint recovered), that alert stands; a second would outlive the recovery.
    return store.open_alert(alert, messages, events=["maintenance"] if window else [], adopt_open=True)
