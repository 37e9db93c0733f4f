"""The alert book: conditions in, alert state changes out (pending → firing → resolved, flapping, silences).

`AlertBook.evaluate` runs on the engine's event loop and is pure bookkeeping; every store write it
decides on is returned as an `AlertWrite`, which the engine's writer runs in order on its store thread
(keeping and retrying it while the store refuses writes). An alert and its outbox rows are committed
together before anyone is notified.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_console.config import Settings
from mlops_console.core.notifier import outbox_rows
from mlops_console.core.rules import rule_title
from mlops_console.core.store import Store

log = logging.getLogger("mlops_console.alerts")

FLAP_WINDOW = 600.0
FLAP_FIRES = 3
"""Fires of one fingerprint inside FLAP_WINDOW that make it flapping: one page, then quiet."""
FLAP_SETTLE = 120.0
"""Seconds a flapping alert's condition must stay clear before it resolves (and pages the resolve)."""
ADOPTED_CLEAR_PROBES = 3
"""An alert adopted from the store (restart, takeover) resolves only after its condition has been seen
clear for max(rule `for`, this many probe intervals) without this engine seeing it active first."""


@dataclass
class Condition:
    rule: str
    endpoint: str
    active: bool | None
    """True: the condition holds. False: evidence says it is clear. None: not enough evidence either way
    (no probe yet, too few samples in the window, a version nobody reported): nothing fires, nothing
    resolves."""
    severity: str
    for_: float = 0.0
    value: float | None = None
    threshold: float | None = None
    detail: str = ""
    """Observed versus threshold in words, e.g. "p95 1.84 s > 1.00 s for 30 s"."""
    model: str | None = None
    version: str | None = None
    interval: float = 0.0
    """Seconds between the observations behind the condition (the endpoint's probe interval)."""


@dataclass
class _Tracked:
    fingerprint: str
    pending_since: float | None = None
    firing: bool = False
    alert_id: int | None = None
    fire_times: deque[float] = field(default_factory=lambda: deque(maxlen=FLAP_FIRES * 4))
    flapping: bool = False
    clear_since: float | None = None
    adopted: bool = False
    """Firing because the store said so (restart, takeover), not because this engine saw it yet."""
    alert: dict[str, Any] = field(default_factory=dict)
    """The open alert's fields (summary, severity, start...), for pages sent before it is written."""
    writes: list[AlertWrite] = field(default_factory=list)
    """Writes decided for this fingerprint and not yet known to be in the store."""


class DirectPageInFlight(Exception):
    """A write reached its commit while its pages were being sent directly: retry it once they are."""


@dataclass
class AlertWrite:
    """One alert state change for the store, and through its outbox for the pager.

    Writes run in order on the writer's thread; one that fails stays queued and is retried. `direct`
    holds pages already delivered straight through apprise while the store refused the write: they are
    recorded as sent when the write lands, so nobody is paged twice for them. A direct page and the
    commit exclude each other (`claim_direct`, `with_direct`): a page is either in the outbox or sent.
    """

    kind: str
    """firing | flapping | resolved"""
    fingerprint: str
    created_at: float
    alert: dict[str, Any]
    run: Callable[[Store, AlertWrite], None]
    direct: dict[str, dict[str, Any]] = field(default_factory=dict)
    direct_tried: bool = False
    done: bool = False
    """Set on the writer's thread once committed; the book reads it on the event loop."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sending: bool = False
    _committing: bool = False

    def __call__(self, store: Store) -> None:
        committed = False
        try:
            self.run(store, self)
            committed = True
        finally:
            with self._lock:
                # Done before the commit's claim is let go: a direct page checked in between would
                # otherwise go out beside the outbox rows just committed.
                self.done = self.done or committed
                self._committing = False

    def claim_direct(self) -> bool:
        """Before paging directly: False if the write is committing (its outbox rows will page)."""
        with self._lock:
            if self._committing or self.done:
                return False
            self._sending = True
            return True

    def release_direct(self) -> None:
        with self._lock:
            self._sending = False

    def direct_rows(self, settings: Settings, note: str) -> list[dict[str, Any]]:
        """The pages this write would queue, with `note` (why they bypass the store); none sent yet."""
        title, body = render_message(self.kind, self.alert)
        body += "\n" + note
        rows = outbox_rows(
            settings,
            endpoint=self.alert["endpoint"],
            severity=self.alert["severity"],
            kind=self.kind,
            title=title,
            body=body,
        )
        return [r for r in rows if r["channel"] not in self.direct]

    def with_direct(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`rows` with every channel already paged directly replaced by the page that was sent.

        Called inside the write's transaction, holding the store's write lock: from here on the
        commit, not a direct page, decides who is paged."""
        with self._lock:
            if self._sending:
                raise DirectPageInFlight(self.kind)
            self._committing = True
        by_channel = {r["channel"]: r for r in rows}
        by_channel.update(self.direct)
        return list(by_channel.values())


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


def adopted_window(condition: Condition) -> float:
    """How long an adopted alert's condition must be seen clear before it resolves."""
    return max(condition.for_, ADOPTED_CLEAR_PROBES * condition.interval)


class AlertBook:
    """In-memory alert state of one engine, mirrored into the store through AlertWrites."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._restored_rules: dict[str, tuple[str, str, str | None]] = {}
        self._closed: deque[int] = deque(maxlen=1000)
        """Ids of alerts this book resolved, so a store read that predates the write cannot revive them."""

    def restore(self, open_alerts: list[dict[str, Any]]) -> None:
        """Adopt alerts a previous run (or another command) left open, so a restart does not page twice.

        An adopted alert stays firing until this engine has seen its condition clear for a full window
        (`adopted_window`): a restarted engine has no evidence yet, and no evidence is not "clear".
        """
        for alert in open_alerts:
            if alert["id"] in self._closed:
                continue  # resolved here after that read was taken
            tracked = self._tracked.setdefault(alert["fingerprint"], _Tracked(alert["fingerprint"]))
            if any(not w.done for w in tracked.writes):
                continue  # our own writes for it are still queued: the store is behind, not the book
            if tracked.firing and tracked.alert_id == alert["id"]:
                continue
            tracked.firing, tracked.alert_id, tracked.adopted = True, alert["id"], True
            tracked.alert = dict(alert)
            tracked.pending_since, tracked.clear_since = alert["started_at"], None
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

    def evaluate(self, condition: Condition) -> list[AlertWrite]:
        now = self.clock()
        fp = fingerprint(condition.rule, condition.endpoint, condition.model)
        tracked = self._tracked.get(fp)
        if tracked is None:
            if not condition.active:
                return []
            tracked = self._tracked[fp] = _Tracked(fp)
        if condition.active is None:
            # Missing evidence: nothing starts or resolves, and a settling alert needs a fresh clear run.
            tracked.clear_since = None
            return []
        if condition.active:
            tracked.clear_since = None
            if tracked.firing:
                tracked.adopted = False  # seen with our own probes: it resolves like any other now
                return []
            if tracked.pending_since is None:
                tracked.pending_since = now
            if now - tracked.pending_since >= condition.for_:
                return [self._fire(tracked, condition, now)]
            return []
        tracked.pending_since = None
        if tracked.firing:
            settle = max(
                FLAP_SETTLE if tracked.flapping else 0.0,
                adopted_window(condition) if tracked.adopted else 0.0,
            )
            if settle > 0:
                # Flapping and adopted alerts stay one open alert until the condition has settled.
                tracked.clear_since = tracked.clear_since or now
                if now - tracked.clear_since < settle:
                    return []
            return [self._resolve(tracked, condition, now)]
        unwritten = any(not w.done for w in tracked.writes)
        if not unwritten and (not tracked.fire_times or now - tracked.fire_times[-1] > FLAP_WINDOW):
            del self._tracked[fp]
        return []

    def _write(
        self, tracked: _Tracked, kind: str, now: float, run: Callable[[Store, AlertWrite], None]
    ) -> AlertWrite:
        tracked.writes = [w for w in tracked.writes if not w.done]
        write = AlertWrite(kind, tracked.fingerprint, now, dict(tracked.alert), run)
        tracked.writes.append(write)
        return write

    def _fire(self, tracked: _Tracked, condition: Condition, now: float) -> AlertWrite:
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
        tracked.alert = alert
        settings = self.settings
        kind = "flapping" if starts_flapping else "firing"

        def run(store: Store, write: AlertWrite) -> None:
            quiet = store.silenced_until(tracked.fingerprint) is not None
            created = False

            def notifications(alert_id: int) -> list[dict[str, Any]]:
                nonlocal created
                created = True
                rows = [] if quiet else _notifications(settings, kind, {**alert, "id": alert_id})
                return write.with_direct(rows)

            alert_id = store.open_alert(
                alert, notifications, events=["flapping"] if starts_flapping else [], adopt_open=True
            )
            tracked.alert_id = alert_id
            if not created:
                log.info("alert #%s was already open in the store: adopted", alert_id)
                return
            log.warning(
                "alert #%s %s: %s%s",
                alert_id,
                kind,
                alert["summary"],
                " (not paged: silenced)" if quiet else "",
                extra={
                    "event": "alert_" + kind,
                    "alert": alert_id,
                    "rule": alert["rule"],
                    "endpoint": alert["endpoint"],
                },
            )

        return self._write(tracked, kind, now, run)

    def _resolve(self, tracked: _Tracked, condition: Condition, now: float) -> AlertWrite:
        tracked.firing, tracked.adopted, tracked.clear_since = False, False, None
        if tracked.flapping:
            tracked.flapping = False
            tracked.fire_times.clear()
        settings = self.settings
        closed = self._closed
        self._restored_rules.pop(tracked.fingerprint, None)

        def run(store: Store, write: AlertWrite) -> None:
            # The alert's id is known here: the write that opened (or adopted) it ran before this one.
            alert_id = tracked.alert_id
            if alert_id is None:
                return
            try:
                alert = store.get_alert(alert_id)
            except KeyError:
                return
            if alert["state"] != "resolved":
                quiet = store.silenced_until(tracked.fingerprint) is not None
                rows = [] if quiet else _notifications(settings, "resolved", alert)
                store.resolve_alert(
                    alert_id, lambda: write.with_direct(rows), note=condition.detail or None, at=now
                )
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
            closed.append(alert_id)
            if tracked.alert_id == alert_id:
                tracked.alert_id = None

        write = self._write(tracked, "resolved", now, run)
        if tracked.alert_id is not None:
            write.alert["id"] = tracked.alert_id
        return write


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
