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
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from mlops_console.core.alerts.messages import alert_messages
from mlops_console.core.alerts.timing import ADOPTED_CLEAR_PROBES, FLAP_FIRES, FLAP_SETTLE, FLAP_WINDOW
from mlops_console.core.alerts.writes import AlertWrite
from mlops_console.core.conditions import Condition
from mlops_console.core.store import Alert, NewAlert, OutboxMessage, Store

if TYPE_CHECKING:
    from mlops_console.config import Settings

log = logging.getLogger("mlops_console.alerts")


@dataclass
class _Tracked:
    fingerprint: str
    endpoint: str = ""
    pending_since: float | None = None
    firing: bool = False
    alert_id: int | None = None
    fire_times: deque[float] = field(default_factory=lambda: deque(maxlen=FLAP_FIRES * 4))
    flapping: bool = False
    clear_since: float | None = None
    adopted: bool = False
    """Firing because the store said so (restart, takeover), not because this engine saw it yet."""
    alert: NewAlert | None = None
    """The open alert's fields (summary, severity, start...), for pages sent before it is written."""
    writes: list[AlertWrite] = field(default_factory=list)
    """Writes decided for this fingerprint and not yet known to be in the store."""


@functools.lru_cache(maxsize=65536)
def fingerprint(rule: str, endpoint: str, model: str | None) -> str:
    return hashlib.sha1(f"{rule}\x00{endpoint}\x00{model or ''}".encode()).hexdigest()[:16]


def adopted_window(condition: Condition) -> float:
    """How long an adopted alert's condition must be seen clear before it resolves."""
    return max(condition.for_, ADOPTED_CLEAR_PROBES * condition.interval)


def _as_new(alert: Alert) -> NewAlert:
    return NewAlert(
        fingerprint=alert.fingerprint,
        rule=alert.rule,
        endpoint=alert.endpoint,
        severity=alert.severity,
        summary=alert.summary,
        started_at=alert.started_at,
        model=alert.model,
        version=alert.version,
        value=alert.value,
        threshold=alert.threshold,
        flapping=alert.flapping,
        id=alert.id,
        runbook=alert.runbook,
    )


class AlertBook:
    """In-memory alert state of one engine, mirrored into the store through AlertWrites."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._held: dict[str, int] = {}
        """Tracked fingerprints by endpoint: one the book holds nothing of can be skipped while quiet."""
        self._restored_rules: dict[str, tuple[str, str, str | None]] = {}
        self._closed: deque[int] = deque(maxlen=1000)
        """Ids of alerts this book resolved, so a store read that predates the write cannot revive them."""

    def restore(self, open_alerts: Sequence[Alert]) -> None:
        """Adopt alerts a previous run (or another command) left open, so a restart does not page twice.

        An adopted alert stays firing until this engine has seen its condition clear for a full window
        (`adopted_window`): a restarted engine has no evidence yet, and no evidence is not "clear".
        """
        for alert in open_alerts:
            if alert.id in self._closed:
                continue  # resolved here after that read was taken
            tracked = self._tracked.get(alert.fingerprint) or self._track(
                _Tracked(alert.fingerprint, alert.endpoint)
            )
            if any(not w.done for w in tracked.writes):
                continue  # our own writes for it are still queued: the store is behind, not the book
            if tracked.firing and tracked.alert_id == alert.id:
                continue
            tracked.firing, tracked.alert_id, tracked.adopted = True, alert.id, True
            tracked.alert = _as_new(alert)
            tracked.pending_since, tracked.clear_since = alert.started_at, None
            self._restored_rules[alert.fingerprint] = (alert.rule, alert.endpoint, alert.model)

    def open_rules(self, endpoint: str) -> list[tuple[str, str | None]]:
        """(rule, model) of alerts adopted from the store for this endpoint that are still firing."""
        return [
            (rule, model)
            for fp, (rule, ep, model) in self._restored_rules.items()
            if ep == endpoint and self._tracked[fp].firing
        ]

    def pending(self) -> list[str]:
        return [fp for fp, t in self._tracked.items() if t.pending_since is not None and not t.firing]

    def firing_counts(self) -> dict[tuple[str, str], int]:
        """`{(rule, severity): alerts firing}`, for the watcher's own metrics."""
        counts: dict[tuple[str, str], int] = {}
        for tracked in self._tracked.values():
            if tracked.firing and tracked.alert is not None:
                key = (tracked.alert.rule, tracked.alert.severity)
                counts[key] = counts.get(key, 0) + 1
        return counts

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
            tracked = self._track(_Tracked(fp, condition.endpoint))
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
            self._forget(tracked)
        return []

    def retire(self, endpoint: str, reason: str) -> list[AlertWrite]:
        """The endpoint is gone (no longer discovered): resolve its open alerts now, saying `reason`
        (in the store and in the one resolve page), and forget its pending ones."""
        now = self.clock()
        writes = []
        for tracked in list(self._tracked.values()):
            if tracked.endpoint != endpoint:
                continue
            if tracked.firing and tracked.alert is not None:
                alert = tracked.alert
                condition = Condition(
                    rule=alert.rule,
                    endpoint=endpoint,
                    active=False,
                    severity=alert.severity,
                    detail=reason,
                    model=alert.model,
                )
                writes.append(self._resolve(tracked, condition, now, resolved_because=reason))
            elif not any(not w.done for w in tracked.writes):
                self._forget(tracked)
            else:
                tracked.pending_since = tracked.clear_since = None
        return writes

    def holds_nothing(self, endpoint: str) -> bool:
        """Nothing of `endpoint` is tracked: no alert pending, firing, settling, adopted or remembered
        for flapping, and no write of one queued. A condition that is not active changes nothing then."""
        return endpoint not in self._held

    def _track(self, tracked: _Tracked) -> _Tracked:
        self._tracked[tracked.fingerprint] = tracked
        self._held[tracked.endpoint] = self._held.get(tracked.endpoint, 0) + 1
        return tracked

    def _forget(self, tracked: _Tracked) -> None:
        del self._tracked[tracked.fingerprint]
        left = self._held[tracked.endpoint] - 1
        if left:
            self._held[tracked.endpoint] = left
        else:
            del self._held[tracked.endpoint]

    def _write(
        self, tracked: _Tracked, kind: str, now: float, run: Callable[[Store, AlertWrite], None]
    ) -> AlertWrite:
        tracked.writes = [w for w in tracked.writes if not w.done]
        assert tracked.alert is not None
        write = AlertWrite(kind, tracked.fingerprint, now, tracked.alert, run)
        tracked.writes.append(write)
        return write

    def _fire(self, tracked: _Tracked, condition: Condition, now: float) -> AlertWrite:
        tracked.firing = True
        while tracked.fire_times and now - tracked.fire_times[0] > FLAP_WINDOW:
            tracked.fire_times.popleft()
        tracked.fire_times.append(now)
        starts_flapping = tracked.flapping = len(tracked.fire_times) >= FLAP_FIRES
        alert = NewAlert(
            fingerprint=tracked.fingerprint,
            rule=condition.rule,
            endpoint=condition.endpoint,
            model=condition.model,
            version=condition.version,
            severity=condition.severity,
            summary=condition.detail,
            value=condition.value,
            threshold=condition.threshold,
            started_at=now,
            flapping=starts_flapping,
            runbook=self.settings.runbook_for(condition.rule, condition.endpoint) or "",
            evidence=condition.evidence,
        )
        tracked.alert = alert
        settings = self.settings
        kind = "flapping" if starts_flapping else "firing"

        def run(store: Store, write: AlertWrite) -> None:
            quiet = store.silenced_until(tracked.fingerprint) is not None
            # Recorded as withheld by the window, so it pages once if still firing when the window ends.
            window = None if quiet else store.in_maintenance(alert.endpoint)
            quiet = quiet or window is not None
            events = ["flapping"] if starts_flapping else []
            if window is not None:
                events.append("maintenance")
            created = False

            def notifications(alert_id: int) -> list[OutboxMessage]:
                nonlocal created
                created = True
                messages: list[OutboxMessage] = (
                    [] if quiet else alert_messages(settings, kind, replace(alert, id=alert_id))
                )
                return write.with_direct(messages)

            alert_id = store.open_alert(alert, notifications, events=events, adopt_open=True)
            tracked.alert_id = alert_id
            if not created:
                log.info("alert #%s was already open in the store: adopted", alert_id)
                return
            log.warning(
                "alert #%s %s: %s%s",
                alert_id,
                kind,
                alert.summary,
                (" (not paged: maintenance)" if window else " (not paged: silenced)") if quiet else "",
                extra={
                    "event": "alert_" + kind,
                    "alert": alert_id,
                    "rule": alert.rule,
                    "endpoint": alert.endpoint,
                },
            )

        return self._write(tracked, kind, now, run)

    def _resolve(
        self, tracked: _Tracked, condition: Condition, now: float, resolved_because: str = ""
    ) -> AlertWrite:
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
            if alert.state != "resolved":
                quiet = store.silenced_until(tracked.fingerprint) is not None or store.maintenance_quiet(
                    alert_id
                )

                def messages() -> list[OutboxMessage]:
                    # Inside the resolve's transaction: an escalation that just landed hears the resolve.
                    if quiet:
                        return write.with_direct([])
                    escalated = store.escalated_channels(alert_id)
                    return write.with_direct(
                        alert_messages(
                            settings,
                            "resolved",
                            alert,
                            escalated=escalated,
                            resolved_because=resolved_because,
                        )
                    )

                store.resolve_alert(alert_id, messages, note=condition.detail or None, at=now)
                log.info(
                    "alert #%s resolved: %s %s",
                    alert_id,
                    alert.endpoint,
                    alert.rule,
                    extra={
                        "event": "alert_resolved",
                        "alert": alert_id,
                        "rule": alert.rule,
                        "endpoint": alert.endpoint,
                    },
                )
            closed.append(alert_id)
            if tracked.alert_id == alert_id:
                tracked.alert_id = None

        write = self._write(tracked, "resolved", now, run)
        if tracked.alert_id is not None:
            write.alert = replace(write.alert, id=tracked.alert_id)
        return write
