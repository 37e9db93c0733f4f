"""The alert book: conditions in, alert state changes out (pending → firing → resolved, flapping, silences).

`AlertBook.evaluate` runs on the engine's event loop and is pure bookkeeping; every store write it
decides on is returned as a `StoreOp`, which the engine runs in order on its store thread. An alert
and its outbox rows are committed together before anyone is notified.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from console.config import Settings
from console.core.notifier import outbox_rows
from console.core.rules import rule_title
from console.core.store import Store

log = logging.getLogger("console.alerts")

FLAP_WINDOW = 600.0
FLAP_FIRES = 3
"""Fires of one fingerprint inside FLAP_WINDOW that make it flapping: one page, then quiet."""
FLAP_SETTLE = 120.0
"""Seconds a flapping alert's condition must stay clear before it resolves (and pages the resolve)."""

StoreOp = Callable[[Store], None]


@dataclass
class Condition:
    rule: str
    endpoint: str
    active: bool
    severity: str
    for_: float = 0.0
    value: float | None = None
    threshold: float | None = None
    detail: str = ""
    """Observed versus threshold in words, e.g. "p95 1.84 s > 1.00 s for 30 s"."""
    model: str | None = None
    version: str | None = None


@dataclass
class _Tracked:
    fingerprint: str
    pending_since: float | None = None
    firing: bool = False
    alert_id: int | None = None
    fire_times: deque[float] = field(default_factory=lambda: deque(maxlen=FLAP_FIRES * 4))
    flapping: bool = False
    clear_since: float | None = None


@functools.lru_cache(maxsize=65536)
def fingerprint(rule: str, endpoint: str, model: str | None) -> str:
    return hashlib.sha1(f"{rule}\x00{endpoint}\x00{model or ''}".encode()).hexdigest()[:16]


def format_time(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def render_message(kind: str, alert: dict[str, Any]) -> tuple[str, str]:
    """Title and body of a notification: endpoint, rule, observed value vs threshold, model version."""
    label = {"firing": "FIRING", "resolved": "RESOLVED", "reminder": "STILL FIRING", "flapping": "FLAPPING"}[
        kind
    ]
    title = f"[{label}] {alert['endpoint']}: {rule_title(alert['rule'])}"
    lines = [f"{alert['summary']}"]
    if alert.get("model"):
        version = f" v{alert['version']}" if alert.get("version") else ""
        lines.append(f"Model: {alert['model']}{version}")
    lines.append(
        f"Severity: {alert['severity']}. Rule: {alert['rule']}. Since {format_time(alert['started_at'])}."
    )
    if kind == "flapping":
        lines.append(
            f"It fired {FLAP_FIRES} times in {int(FLAP_WINDOW / 60)} min. It stays open, without further "
            f"pages, until it has been clear for {int(FLAP_SETTLE)} s."
        )
    if kind == "resolved":
        lines.append("The condition has cleared.")
    if alert.get("id"):
        lines.append(f"Alert #{alert['id']} (mlops-console alerts show {alert['id']}).")
    return title, "\n".join(lines)


def _notifications(settings: Settings, kind: str, alert: dict[str, Any]) -> list[dict[str, Any]]:
    title, body = render_message(kind, alert)
    return outbox_rows(
        settings, endpoint=alert["endpoint"], severity=alert["severity"], kind=kind, title=title, body=body
    )


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
    """Fire an alert that no probe rule raises (e.g. a deploy that did not converge) and queue its pages.

    A running engine picks it up from the store and resolves it once the endpoint is healthy again.
    """
    alert = {
        "fingerprint": fingerprint(rule, endpoint, model),
        "rule": rule,
        "endpoint": endpoint,
        "model": model,
        "version": version,
        "severity": severity,
        "summary": summary,
        "started_at": time.time(),
    }
    silenced = store.silenced_until(alert["fingerprint"]) is not None
    return store.open_alert(
        alert,
        lambda alert_id: [] if silenced else _notifications(settings, "firing", {**alert, "id": alert_id}),
    )


class AlertBook:
    """In-memory alert state of one engine, mirrored into the store through StoreOps."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._restored_rules: dict[str, tuple[str, str, str | None]] = {}

    def restore(self, open_alerts: list[dict[str, Any]]) -> None:
        """Adopt alerts a previous run (or another command) left open, so a restart does not page twice."""
        for alert in open_alerts:
            tracked = self._tracked.setdefault(alert["fingerprint"], _Tracked(alert["fingerprint"]))
            if tracked.firing and tracked.alert_id == alert["id"]:
                continue
            tracked.firing, tracked.alert_id = True, alert["id"]
            tracked.pending_since = alert["started_at"]
            self._restored_rules[alert["fingerprint"]] = (alert["rule"], alert["endpoint"], alert["model"])

    def open_rules(self, endpoint: str) -> list[tuple[str, str | None]]:
        """(rule, model) of alerts adopted from the store for this endpoint that are still firing."""
        return [
            (rule, model)
            for fp, (rule, ep, model) in self._restored_rules.items()
            if ep == endpoint and self._tracked[fp].firing
        ]

    def pending(self) -> list[str]:
        return [fp for fp, t in self._tracked.items() if t.pending_since is not None and not t.firing]

    def is_firing(self, rule: str, endpoint: str, model: str | None) -> bool:
        tracked = self._tracked.get(fingerprint(rule, endpoint, model))
        return bool(tracked and tracked.firing)

    def is_pending(self, rule: str, endpoint: str, model: str | None) -> bool:
        tracked = self._tracked.get(fingerprint(rule, endpoint, model))
        return bool(tracked and tracked.pending_since is not None and not tracked.firing)

    def evaluate(self, condition: Condition) -> list[StoreOp]:
        now = self.clock()
        fp = fingerprint(condition.rule, condition.endpoint, condition.model)
        tracked = self._tracked.get(fp)
        if tracked is None:
            if not condition.active:
                return []
            tracked = self._tracked[fp] = _Tracked(fp)
        if condition.active:
            tracked.clear_since = None
            if tracked.firing:
                return []
            if tracked.pending_since is None:
                tracked.pending_since = now
            if now - tracked.pending_since >= condition.for_:
                return [self._fire(tracked, condition, now)]
            return []
        tracked.pending_since = None
        if tracked.firing:
            if tracked.flapping:
                # A flapping alert stays one open alert until the condition has settled.
                tracked.clear_since = tracked.clear_since or now
                if now - tracked.clear_since < FLAP_SETTLE:
                    return []
            return [self._resolve(tracked, condition, now)]
        if not tracked.fire_times or now - tracked.fire_times[-1] > FLAP_WINDOW:
            del self._tracked[fp]
        return []

    def _fire(self, tracked: _Tracked, condition: Condition, now: float) -> StoreOp:
        tracked.firing = True
        while tracked.fire_times and now - tracked.fire_times[0] > FLAP_WINDOW:
            tracked.fire_times.popleft()
        tracked.fire_times.append(now)
        starts_flapping = tracked.flapping = len(tracked.fire_times) >= FLAP_FIRES
        alert = {
            "fingerprint": tracked.fingerprint,
            "rule": condition.rule,
            "endpoint": condition.endpoint,
            "model": condition.model,
            "version": condition.version,
            "severity": condition.severity,
            "summary": condition.detail,
            "value": condition.value,
            "threshold": condition.threshold,
            "started_at": now,
            "flapping": int(starts_flapping),
        }
        settings = self.settings

        def op(store: Store) -> None:
            quiet = store.silenced_until(tracked.fingerprint) is not None
            kind = "flapping" if starts_flapping else "firing"
            tracked.alert_id = store.open_alert(
                alert,
                lambda alert_id: [] if quiet else _notifications(settings, kind, {**alert, "id": alert_id}),
            )
            if starts_flapping:
                store.add_event(tracked.alert_id, "flapping")
            log.warning(
                "alert #%s %s: %s%s",
                tracked.alert_id,
                "flapping" if starts_flapping else "firing",
                alert["summary"],
                " (not paged: silenced)" if quiet else "",
                extra={
                    "event": "alert_" + kind,
                    "alert": tracked.alert_id,
                    "rule": alert["rule"],
                    "endpoint": alert["endpoint"],
                },
            )

        return op

    def _resolve(self, tracked: _Tracked, condition: Condition, now: float) -> StoreOp:
        tracked.firing = False
        if tracked.flapping:
            tracked.flapping, tracked.clear_since = False, None
            tracked.fire_times.clear()
        settings = self.settings
        self._restored_rules.pop(tracked.fingerprint, None)

        def op(store: Store) -> None:
            if tracked.alert_id is None:
                return
            alert_id, tracked.alert_id = tracked.alert_id, None
            try:
                alert = store.get_alert(alert_id)
            except KeyError:
                return
            if alert["state"] == "resolved":
                return
            quiet = store.silenced_until(tracked.fingerprint) is not None
            notes = [] if quiet else _notifications(settings, "resolved", alert)
            store.resolve_alert(alert_id, notes, note=condition.detail or None, at=now)
            log.info(
                "alert #%s resolved: %s %s",
                alert_id,
                alert["endpoint"],
                alert["rule"],
                extra={
                    "event": "alert_resolved",
                    "alert": alert_id,
                    "rule": alert["rule"],
                    "endpoint": alert["endpoint"],
                },
            )

        return op


def remind_unacknowledged(store: Store, settings: Settings) -> int:
    """Re-notify firing alerts nobody acknowledged within `notify.renotify_after`; returns how many."""
    after = settings.notify.renotify_after
    if after <= 0:
        return 0
    now = time.time()
    due = store.query(
        "SELECT * FROM alerts WHERE state='firing' AND flapping=0 "
        "AND (silenced_until IS NULL OR silenced_until<?) "
        "AND coalesce(last_notified_at, started_at) < ?",
        [now, now - after],
    )
    for alert in due:
        store.remind(alert["id"], _notifications(settings, "reminder", alert))
    return len(due)
