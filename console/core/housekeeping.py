"""The engine's periodic work while it leads: status rows and rollups, alerts opened by others and
registry changes, what the detectors learnt, pruning, reminders, escalations, automatic rollback.
Functions of the `Engine`, whose state they use."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from mlops_console.core.alerts import escalate_unacknowledged, page_after_maintenance, remind_unacknowledged
from mlops_console.core.conditions.detected import DetectedRules
from mlops_console.core.snapshot import EngineHealth
from mlops_console.core.status_rows import StatusBatch
from mlops_console.core.takeover import removed_since
from mlops_console.core.takeover import settle as settle_removed

if TYPE_CHECKING:
    from mlops_console.core.endpoint_state import EndpointState
    from mlops_console.core.engine import Engine

log = logging.getLogger("mlops_console.engine")

STATUS_EVERY = 2.0
"""Seconds between two writes of an endpoint's status row and rollup (when they changed)."""
STATUS_SLICES = 4
"""The endpoints are written in this many slices, one a round (STATUS_EVERY / STATUS_SLICES apart):
a thousand rows at once held the event loop and the GIL for a fifth of a second every 2 s, delaying
every probe due meanwhile (the lag p99)."""
STORE_SYNC_EVERY = 5.0
REMIND_EVERY = 30.0
ESCALATE_EVERY = 2.0
"""How late an escalation may be past its channel's `after`, or a page past its maintenance window."""
AUTO_ROLLBACK_EVERY = 1.0
DETECTOR_STATE_EVERY = 300.0
"""Seconds between writes of what the detectors learnt: a watcher killed with -9 loses at most this
much learning, and never a condition that turned (an endpoint whose condition starts or stops holding
has its state written within a housekeeping round, 0.5 s). Every endpoint's detectors learn once a
minute, and building a fleet's states (10,000 endpoints) every 10 s took a tenth of a core."""
DETECTOR_STATE_RETRY = 30.0
"""Seconds until a period's write the store refused is tried again (not a whole period: a store busy
for a moment would lose 10 minutes of learning; not every round: each failure ends the round before
its reminders and escalations)."""
DETECTOR_STATE_BATCH = 500
"""Endpoints whose learnt state is written per store call."""
DETECTOR_STATE_SLICE = 100
"""Endpoints whose learnt state is taken per turn of the event loop: every endpoint's detectors judge
at the turn of the same minute, and taking a thousand states at once held the loop for a tenth of a
second or more."""
PRUNE_EVERY = 3600.0
"""Seconds between two prunings of history older than `store.history` (a backlog: every round)."""


async def housekeeping_loop(engine: Engine) -> None:
    last = {
        "status": 0.0,
        "slice": 0.0,
        "sync": 0.0,
        "remind": 0.0,
        "escalate": 0.0,
        "detectors": time.time(),
        "prune": 0.0,
    }
    logged_at = 0.0
    while True:
        await asyncio.sleep(0.5)
        try:
            await _housekeeping_round(engine, last)
        except sqlite3.Error as exc:
            # The store refusing a status write or a read is not a bug: say so and try again. Alert
            # writes have their own queue (AlertWriter), so nothing is lost meanwhile.
            engine._store_problem = f"store: {exc}"
            if time.time() - logged_at >= 30.0:
                logged_at = time.time()
                log.warning("store housekeeping failed: %s; retrying", exc, extra={"event": "store_error"})
        else:
            engine._store_problem = None


async def _housekeeping_round(engine: Engine, last: dict[str, float]) -> None:
    now = time.time()
    if engine.found_endpoints:  # first: before any write could store a discovered one's fresh state
        found, engine.found_endpoints = engine.found_endpoints, set()
        try:
            # One gone for good whose going is not written yet: its stored state is of the incident it
            # left with (deleted with that write), no evidence about it now.
            await restore_detectors(engine, found - engine._gone)
        except sqlite3.Error:
            engine.found_endpoints |= found
            raise
    if engine.removed_endpoints:
        settle_removed(engine, now, _endpoints_known(engine))
    if now - last["status"] >= STATUS_EVERY / STATUS_SLICES:
        last["status"] = now
        last["slice"] = (last["slice"] + 1) % STATUS_SLICES
        await write_status(engine, now, part=(int(last["slice"]), STATUS_SLICES))
    if now - last["sync"] >= STORE_SYNC_EVERY:
        last["sync"] = now
        # Alerts opened by other commands (a deploy that did not converge) become ours to resolve.
        open_alerts = await engine._in_store(engine.store.open_alerts)
        engine.book.restore(open_alerts)
        if engine.settles_removed:  # those of endpoints the configuration lacks resolve (`takeover`)
            engine.removed_endpoints.update(removed_since(engine, open_alerts))
        change_id = await engine._in_store(engine.store.latest_change_id)
        if change_id != engine._last_change_id:
            engine._last_change_id = change_id
            engine.registry.wake()
    if now - last["detectors"] >= DETECTOR_STATE_EVERY:
        last["detectors"] = now - DETECTOR_STATE_EVERY + DETECTOR_STATE_RETRY  # should the store refuse it
        await write_detector_states(engine)
        last["detectors"] = now
    elif DetectedRules.urgent_marks != last.get("urgent"):
        marks = DetectedRules.urgent_marks
        urgent = [name for name, state in engine.endpoints.items() if state.detected.urgent]
        if urgent:
            await write_detector_states(engine, urgent)
        last["urgent"] = marks  # not on a refused write: they are looked for again next round
    if now - last["prune"] >= PRUNE_EVERY:
        last["prune"] = now
        pruned = await engine._in_store(engine.store.prune_history, now - engine.settings.store.history)
        if pruned >= 20_000:
            last["prune"] = now - PRUNE_EVERY  # more to prune: again next round
    if now - last["remind"] >= REMIND_EVERY:
        last["remind"] = now
        if await engine._in_store(remind_unacknowledged, engine.store, engine.settings):
            engine._notifier_wake()
    if now - last["escalate"] >= ESCALATE_EVERY:
        last["escalate"] = now
        queued = await engine._in_store(page_after_maintenance, engine.store, engine.settings)
        if any(n.escalates for n in engine.settings.notifications):
            queued += await engine._in_store(escalate_unacknowledged, engine.store, engine.settings)
        if queued:
            engine._notifier_wake()


async def auto_rollback_loop(engine: Engine) -> None:
    from mlops_console.core.auto_rollback import AutoRollback

    runner = engine.auto_rollback = AutoRollback(
        engine.settings,
        engine.store,
        owner=engine.owner,
        may_act=lambda: engine.leader and not engine.read_only and not engine._stop.is_set(),
    )
    while True:
        # Its own thread: a rollback waits for deploy hooks and their verification (minutes).
        if await asyncio.to_thread(runner.round):
            engine._notifier_wake()
        await asyncio.sleep(AUTO_ROLLBACK_EVERY)


async def write_status(engine: Engine, now: float | None = None, part: tuple[int, int] | None = None) -> None:
    """The status rows and rollups that changed since the last write (a Prometheus-read fleet
    changes once a round, not every write), the rows of endpoints gone, and this engine's health.
    `part=(k, n)`: only the rows of the k-th of n slices of the endpoints (by name, stable while the
    process runs), so a round's write stays short; the health goes with the first slice (every
    STATUS_EVERY: followers judge the lease holder by its age)."""
    states: Collection[EndpointState] = engine.endpoints.values()
    if part is not None:
        k, n = part
        states = [state for state in states if state.slot % n == k]
    batch = engine.status_rows.pending(states)
    gone = [name for name in engine._gone if name not in engine.endpoints]
    back = [name for name in engine._gone if name in engine.endpoints]  # found again: their rows stay
    keep = None if engine.status_rows.pruned or not _endpoints_known(engine) else _kept(engine)
    health = engine.health(now) if part is None or part[0] == 0 else None
    await engine._in_store(_write_status, engine, batch, health, gone, keep, back)
    engine.status_rows.written(batch, gone)
    engine.status_rows.pruned = engine.status_rows.pruned or keep is not None
    engine._gone.difference_update(gone, back)


def _kept(engine: Engine) -> set[str]:
    """Endpoints whose rows stay: those with a state, those discovered before a restart and not
    found again yet (their rows are how a watcher restarted during the grace still knows them), and,
    in a console, every one a watcher discovered (`foreign_rows`)."""
    remembered = engine.prometheus.remembered if engine.prometheus is not None else ()
    return {*engine.endpoints, *remembered, *engine.foreign_rows}


def _endpoints_known(engine: Engine) -> bool:
    """Every endpoint there is has a state (discovery, where configured, has answered once): the
    rows of any other endpoint in the store may go."""
    return not engine.settings.discover or (engine.prometheus is not None and engine.prometheus.state == "ok")


def _write_status(
    engine: Engine,
    batch: StatusBatch,
    health: EngineHealth | None,
    gone: Sequence[str] = (),
    keep: Collection[str] | None = None,
    back: Sequence[str] = (),
) -> None:
    """The rows (built here, in the store's thread: JSON documents are the bulk of a write), the
    engine's health (None: not this round) and the rollups."""
    # One document in memory at a time; the histories go as the snapshots hold them (not listed).
    rows = (snapshot.to_dict(histories=False) for snapshot in batch.snapshots)
    health_row = None if health is None else {"owner": engine.owner, **health.to_dict()}
    engine.store.write_status(rows, engine=health_row, gone=gone, keep=keep, back=back)
    engine.store.write_rollups(batch.rollups)


async def restore_detectors(
    engine: Engine, names: Collection[str], written_since: float | None = None
) -> None:
    """Continue with the baselines the last lease holder (this watcher before a restart, or another
    engine) wrote, instead of learning from scratch, for `names`: the configured endpoints when the
    engine starts leading, those discovery finds new to it as it finds them (`written_since`: only
    states stored from then on)."""
    if not names:
        return
    saved = await engine._in_store(engine.store.read_detector_state, names, written_since)
    restored = 0
    for name, learnt in saved.items():
        state = engine.endpoints.get(name)
        if state is not None:
            restored += len(state.detected.load(learnt))
    if restored:
        log.info(
            "detectors continue from the stored state (%d rules)",
            restored,
            extra={"event": "detectors_restored", "rules": restored},
        )


async def write_detector_states(
    engine: Engine, only: Sequence[str] | None = None, everything: bool = False
) -> None:
    """What the detectors learnt since the last write (`only`: of these endpoints alone; `everything`:
    all of it, changed or not), `DETECTOR_STATE_BATCH` endpoints at a time: a fleet's states at once
    (10,000 endpoints, each rule's windows) took 150 MB at their peak."""
    if only is not None:
        names = list(only)
    else:
        names = [name for name, state in engine.endpoints.items() if everything or state.detected.changed]
    for first in range(0, len(names), DETECTOR_STATE_BATCH):
        learnt, urgent = {}, set()
        for index, name in enumerate(names[first : first + DETECTOR_STATE_BATCH]):
            if index and index % DETECTOR_STATE_SLICE == 0:
                await asyncio.sleep(0)
            state = engine.endpoints.get(name)  # gone meanwhile
            if state is not None:
                if state.detected.urgent:
                    urgent.add(name)
                taken = state.detected.to_state() if everything else state.detected.take_state()
                if taken:
                    learnt[name] = taken
        try:
            await engine._in_store(engine.store.write_detector_state, learnt)
        except sqlite3.Error:
            for name in learnt:
                if name in engine.endpoints:  # written next round instead (an urgent one, not next period)
                    detected = engine.endpoints[name].detected
                    detected.changed = True
                    if name in urgent:
                        detected.mark_urgent()
            raise
        del learnt
