"""The promotes under automatic-rollback watch, the alert that would roll one back, and cancelling."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlops_console.config import AutoRollbackSettings, Settings
from mlops_console.core.promotion import resolve_target, serving_endpoints
from mlops_console.core.store import Alert, AuditEntry, AutoRollbackDecision, Store


@dataclass(frozen=True, slots=True)
class Window:
    """A promote under watch: until when, and the decision about it (None while none was taken)."""

    config: AutoRollbackSettings
    alias: str
    promote: AuditEntry
    until: float
    decision: AutoRollbackDecision | None

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def armed(self) -> bool:
        """Still able to roll back by itself (nobody decided yet)."""
        return self.decision is None

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


def windows(settings: Settings, store: Store, now: float | None = None) -> list[Window]:
    """The promotes under watch now: each configured alias whose latest change is a promote made less
    than `watch` ago (a later rollback or promote ends the window of the one before)."""
    now = time.time() if now is None else now
    out = []
    for config in settings.auto_rollback:
        alias = settings.auto_rollback_alias(config)
        key = resolve_target(settings, config.model, alias, None).key
        latest = store.latest_alias_change(config.model, key)
        if latest is None or latest.action != "promote" or latest.at + config.watch <= now:
            continue
        decision = store.auto_rollback_decision(latest.id)
        out.append(Window(config, alias, latest, latest.at + config.watch, decision))
    return out


def recent_decisions(
    settings: Settings, store: Store, now: float | None = None
) -> list[AutoRollbackDecision]:
    """The decisions taken less than `watch` ago about each configured alias, newest first (what the
    console shows once a rollback has ended the window)."""
    now = time.time() if now is None else now
    out = []
    for config in settings.auto_rollback:
        alias = settings.auto_rollback_alias(config)
        out += [
            d
            for d in store.auto_rollback_decisions()
            if (d.model, d.alias) == (config.model, alias) and d.decided_at > now - config.watch
        ]
    return sorted(out, key=lambda d: d.decided_at, reverse=True)


def window_for(settings: Settings, store: Store, model: str, alias: str | None = None) -> Window | None:
    """The window of one model (and alias, when it has several watched)."""
    for window in windows(settings, store):
        if window.model == model and (alias is None or window.alias == alias):
            return window
    return None


def trigger(settings: Settings, store: Store, window: Window) -> Alert | None:
    """The first alert that rolls this promote back: one of the window's rules, firing (neither
    acknowledged nor silenced: a person is on those), on an endpoint serving the alias and not under
    a maintenance window (people are working on it: its failures are expected, not the release's),
    about the promoted version, raised after the promote."""
    target = resolve_target(settings, window.model, window.alias, None)
    endpoints = [
        e.name
        for e in serving_endpoints(settings, window.model, target)
        if store.in_maintenance(e.name) is None
    ]
    if not endpoints or not window.promote.to_version:
        return None
    rules = list(window.config.rules)
    rows = store.query(
        f"SELECT * FROM alerts WHERE state='firing' AND model=? AND version=? AND started_at>=? "
        f"AND endpoint IN ({', '.join('?' * len(endpoints))}) AND rule IN ({', '.join('?' * len(rules))}) "
        "AND (silenced_until IS NULL OR silenced_until<=?) ORDER BY started_at, id LIMIT 1",
        [window.model, window.promote.to_version, window.promote.at, *endpoints, *rules, time.time()],
    )
    return Alert.from_row(rows[0]) if rows else None


def cancel(
    settings: Settings, store: Store, model: str, *, alias: str | None, actor: str, reason: str | None
) -> tuple[Window | None, AutoRollbackDecision | None, int | None]:
    """A person cancels the pending automatic rollback of `model`: its window, the decision that
    stands now, and the audit id of the cancellation (None when there was no window, or the promote
    was already decided: the decision says how)."""
    window = window_for(settings, store, model, alias)
    if window is None:
        return None, None, None
    audit_id = store.cancel_auto_rollback(window.promote, actor=actor, reason=reason)
    return window, store.auto_rollback_decision(window.promote.id), audit_id
