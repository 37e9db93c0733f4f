"""What a page says: title and body per alert state change, and the outbox messages that carry them."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

from mlops_console.core.alerts.timing import FLAP_FIRES, FLAP_SETTLE, FLAP_WINDOW
from mlops_console.core.conditions import rule_title
from mlops_console.core.notifier import outbox_messages
from mlops_console.core.store import OutboxMessage

if TYPE_CHECKING:
    from mlops_console.config import Settings


class AlertText(Protocol):
    """What a page needs to know of an alert: a stored `Alert` or a `NewAlert` about to be written."""

    @property
    def id(self) -> int | None: ...
    @property
    def rule(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def runbook(self) -> str | None: ...


def runbook_of(settings: Settings, alert: AlertText) -> str | None:
    """The runbook stored with the alert when it fired ('' for none); for an alert stored before
    runbooks were, the config's (`Settings.runbook_for`)."""
    if alert.runbook is not None:
        return alert.runbook or None
    return settings.runbook_for(alert.rule, alert.endpoint)


def format_time(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def render_message(
    kind: str, alert: AlertText, runbook: str | None = None, resolved_because: str = ""
) -> tuple[str, str]:
    """Title and body of a notification: endpoint, rule, observed value vs threshold, model version, and
    the runbook (`Settings.runbook_for`) while there is something to do. A resolve says why when it
    was not the condition clearing (`resolved_because`)."""
    label = {
        "firing": "FIRING",
        "resolved": "RESOLVED",
        "reminder": "STILL FIRING",
        "flapping": "FLAPPING",
        "escalation": "ESCALATED",
    }[kind]
    title = f"[{label}] {alert.endpoint}: {rule_title(alert.rule)}"
    lines = [f"{alert.summary}"]
    if alert.rule == "run_metric":
        lines.append(f"Metric: {alert.model}")  # a pipeline's metric alerts carry it in the model slot
    elif alert.model:
        version = f" v{alert.version}" if alert.version else ""
        lines.append(f"Model: {alert.model}{version}")
    lines.append(f"Severity: {alert.severity}. Rule: {alert.rule}. Since {format_time(alert.started_at)}.")
    if kind == "flapping":
        lines.append(
            f"It fired {FLAP_FIRES} times in {int(FLAP_WINDOW / 60)} min. It stays open, without further "
            f"pages, until it has been clear for {int(FLAP_SETTLE)} s."
        )
    if kind == "resolved":
        lines.append(resolved_because or "The condition has cleared.")
    elif runbook:
        lines.append(f"Runbook: {runbook}")
    if alert.id:
        lines.append(f"Alert #{alert.id} (mlops-console alerts show {alert.id}).")
    return title, "\n".join(lines)


def alert_messages(
    settings: Settings,
    kind: str,
    alert: AlertText,
    note: str = "",
    escalated: Collection[str] = (),
    resolved_because: str = "",
) -> list[OutboxMessage]:
    """One message per channel that routes this alert's endpoint and severity (`note` ends the body);
    escalation channels only among `escalated` (the channel ids the alert was escalated to)."""
    title, body = render_message(kind, alert, runbook_of(settings, alert), resolved_because)
    if note:
        body += "\n" + note
    return outbox_messages(
        settings,
        endpoint=alert.endpoint,
        severity=alert.severity,
        kind=kind,
        title=title,
        body=body,
        escalated=escalated,
    )
