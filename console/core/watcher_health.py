"""The lease holder's health as followers and `status` see it: what it last wrote, or `stalled`."""

from __future__ import annotations

import time

from mlops_console.core.snapshot import EngineHealth
from mlops_console.core.store import Store

WATCHER_STALE = 8.0
"""Seconds without a health update from the lease holder (it writes one every few seconds) after
which followers and `status` call it stalled."""


def watcher_health(store: Store, now: float | None = None) -> EngineHealth | None:
    """The lease holder's health as it last wrote it, or `stalled` when it stopped writing it or let
    its lease expire without releasing it; None when no engine holds or left a lease."""
    now = now or time.time()
    lease = store.lease()
    if lease is None:
        # Released: on a clean stop (nothing to report), or by an engine that gave up (say so).
        last = store.last_engine_health()
        if last is not None and last.state == "failed":
            return EngineHealth("failed", last.reason)
        return None
    if lease.expires_at <= now:
        return EngineHealth(
            "stalled", f"{lease.who}: lease expired {now - lease.expires_at:.0f} s ago, nothing probes"
        )
    record = store.engine_health(lease.owner)
    if record is None:
        if now - lease.acquired_at > WATCHER_STALE:
            return EngineHealth("stalled", f"{lease.who} holds the lease but never reported its health")
        return EngineHealth()
    if now - record.updated_at > WATCHER_STALE:
        return EngineHealth("stalled", f"{lease.who}: no store update for {now - record.updated_at:.0f} s")
    return EngineHealth(record.state, record.reason)  # type: ignore[arg-type]
