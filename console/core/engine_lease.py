"""The engine's lease: take it and lead (probe, evaluate, page), or follow the lease holder through the
store; and hand over cleanly when the engine stops. Functions of the `Engine`, whose state they use."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from mlops_console.core.alerts import AlertBook
from mlops_console.core.housekeeping import (
    _write_status,
    auto_rollback_loop,
    housekeeping_loop,
    restore_detectors,
    write_detector_states,
)
from mlops_console.core.notifier import Notifier
from mlops_console.core.snapshot import EndpointSnapshot, EngineHealth
from mlops_console.core.status_rows import StatusBatch
from mlops_console.core.takeover import discovered, last_seen, remembered, take_over
from mlops_console.core.watcher_health import watcher_health

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

log = logging.getLogger("mlops_console.engine")

LEASE_TTL = 10.0
LEASE_RENEW = 3.0


async def lease_loop(engine: Engine) -> None:
    leader_tasks: list[asyncio.Task[Any]] = []
    try:
        await _lease_rounds(engine, leader_tasks)
    except Exception:
        # Restarted by the supervisor: lead again from scratch (adopt open alerts, new probe tasks).
        engine.leader = False
        raise
    finally:
        # Stopping the engine stops its sources too (and closes their HTTP session).
        await _stop_leading(engine, leader_tasks)


async def _lease_rounds(engine: Engine, leader_tasks: list[asyncio.Task[Any]]) -> None:
    while True:
        try:
            held = False if engine.cannot_page else await renew_lease(engine)
        except Exception as exc:
            log.warning("store unavailable: %s", exc)
            held = engine.leader
        if held and not engine.leader:
            log.info("probing %d endpoints", len(engine.endpoints), extra={"event": "lease_acquired"})
            leader_tasks[:] = await _become_leader(engine)
            engine.leader, engine.follow_owner = True, None
            engine._leading_since = time.time()
        elif not held:
            if engine.leader:
                log.warning("lost the store lease; following", extra={"event": "lease_lost"})
                engine.leader = False
                await _stop_leading(engine, leader_tasks)
            await _follow(engine)
        await asyncio.sleep(LEASE_RENEW)


async def renew_lease(engine: Engine) -> bool:
    """Take or renew the store lease; held, remember until when at the earliest it is ours: nobody
    else can take it, nor store what its detectors judged, before then (the store compares the
    taker's clock with that time, so a watcher whose clock is skewed cannot either)."""
    asked_at = time.time()  # the store stamps the lease after this: its expiry is no earlier
    held = await engine._in_store(engine.store.acquire_lease, engine.owner, LEASE_TTL)
    if held:
        engine.lease_until = asked_at + LEASE_TTL
    return held


async def _become_leader(engine: Engine) -> list[asyncio.Task[Any]]:
    # In a watcher, the alerts of endpoints removed from the configuration resolve once it leads.
    inherited = await engine._in_store(take_over, engine.store, engine.settings, engine.settles_removed)
    engine.status_rows.reset()
    if not engine.writer.queue:
        # What we knew when we last led may be stale (another engine resolved or fired since):
        # the store is the truth now. With writes still queued, our book is newer than the store.
        engine.book = AlertBook(engine.settings)
    engine.book.restore(inherited.open_alerts)
    engine.removed_endpoints = inherited.removed
    rows, documents = inherited.rows, []
    # Rows of endpoints this engine lacks that the last leader had discovered (or that cannot say).
    found_before = [r for r in rows if str(r.get("name")) not in engine.endpoints and discovered(r)]
    if engine.prometheus is not None and engine.settings.discover:
        # Endpoints the last leader had discovered: each comes back with discovery or goes after
        # the grace, resolving what it left open (never before discovery has answered).
        engine.prometheus.remember({str(r.get("name")): last_seen(r) for r in found_before})
        # Shown meanwhile, here and to followers (their rows say so), instead of as they were.
        engine.remembered_rows = remembered(rows, engine.prometheus.remembered, engine.book.open_rules)
        documents = [snapshot.to_dict() for snapshot in engine.remembered_rows.values()]
    if not engine.settles_removed:
        engine.foreign_rows = frozenset(str(r.get("name")) for r in found_before)
        # Kept for the next watcher, not read by this console: followers show them stale, not live.
        unread = engine.foreign_rows - engine.remembered_rows.keys()
        documents += [s.to_dict() for s in remembered(rows, unread, engine.book.open_rules).values()]
    if documents:
        try:
            await engine._in_store(engine.store.write_status, documents)
        except sqlite3.Error as exc:
            log.warning("remembered endpoints not marked: %s", exc, extra={"event": "store_error"})
    await _continue_detectors(engine)
    notifier = engine._notifier = Notifier(engine.settings, engine.store, outcomes=engine.deliveries)
    supervise = engine.supervisor.start
    tasks = []
    for source in engine.sources:
        await source.open()
        tasks += [supervise(name, loop) for name, loop in source.loops(engine).items()]
    tasks.append(supervise("notifier", lambda: notifier.run(engine._stop)))
    tasks.append(supervise("housekeeping", lambda: housekeeping_loop(engine)))
    if engine.settings.auto_rollback:
        tasks.append(supervise("auto rollback", lambda: auto_rollback_loop(engine)))
    return tasks


async def _continue_detectors(engine: Engine) -> None:
    """Detectors continue from the stored states (discovered endpoints new to this engine: as discovery
    finds them). After a lease lost and taken again, this engine's own detectors are newer than what it
    stored before (up to a period's judgements): only states another holder stored since replace them."""
    names = list(engine.endpoints)
    if engine.left_leading is None:
        await restore_detectors(engine, names)
        return
    left_at, judged = engine.left_leading
    await restore_detectors(engine, [name for name in names if name not in judged])
    await restore_detectors(engine, [name for name in names if name in judged], written_since=left_at)


async def _stop_leading(engine: Engine, leader_tasks: list[asyncio.Task[Any]]) -> None:
    if leader_tasks:
        # Since the lease could pass, not since this engine noticed: another holder may have stored
        # states in between (this engine paused past its lease, its renewals refused meanwhile).
        left_at = time.time() if engine.lease_until is None else min(engine.lease_until, time.time())
        engine.left_leading = (left_at, frozenset(engine.endpoints))
    for task in leader_tasks:
        task.cancel()
    await asyncio.gather(*leader_tasks, return_exceptions=True)
    leader_tasks.clear()
    for source in engine.sources:
        await source.close()


async def _follow(engine: Engine) -> None:
    holder = await engine._in_store(engine.store.lease_holder)
    waiting = f"cannot page without {engine._unset_paging}" if engine.cannot_page else "waiting for lease"
    engine.follow_owner = holder.who if holder else f"nobody ({waiting})"
    rows = await engine._in_store(engine.store.read_status)
    engine._followed = tuple(map(EndpointSnapshot.shown_from_row, rows))
    followed = await engine._in_store(watcher_health, engine.store)
    engine._followed_health = followed or EngineHealth()


async def step_down(engine: Engine) -> None:
    await engine.writer.close(timeout=engine.settings.notify.timeout)
    if not engine.leader:
        return
    if engine._notifier is not None:
        try:
            await asyncio.wait_for(engine._notifier.drain_once(), timeout=engine.settings.notify.timeout)
        except Exception as exc:
            log.warning("final notification flush incomplete: %s", exc)
    final = EngineHealth("stopped") if engine.failure is None else engine.health()
    try:
        batch = engine.status_rows.pending(engine.endpoints.values())
        await write_detector_states(engine, everything=True)
        await engine._in_store(_write_status, engine, StatusBatch(batch.snapshots, ()), final)
        await engine._in_store(engine.store.release_lease, engine.owner)
    except Exception as exc:
        log.warning("could not release the store lease: %s", exc)
    engine.leader = False
