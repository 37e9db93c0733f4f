"""The engine's run loop: hold the lease, run the sources, evaluate the rules, write, publish.

It runs the same inside the TUI (in its own thread, see `engine_thread`) and in `mlops-console watch`.
One engine per store probes and notifies (the lease); any other follows the store instead. What it
is made of lives beside it: per-endpoint state (`endpoint_state`), where figures come from
(`sources`), the rules (`conditions`), the alert book (`alerts`), the registry's answers
(`registry_watch`), and the writer and notifier.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_console.config import Settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.alerts import (
    AlertBook,
    AlertWrite,
    escalate_unacknowledged,
    page_after_maintenance,
    remind_unacknowledged,
)
from mlops_console.core.conditions import Condition, evaluate
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.notifier import Notifier
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.registry_watch import RegistryWatch
from mlops_console.core.secrets import missing as missing_env
from mlops_console.core.snapshot import EndpointSnapshot, EngineHealth, EngineSnapshot
from mlops_console.core.sources import ProbeSource, ScheduleStats, Source
from mlops_console.core.store import Rollup, Store
from mlops_console.core.supervise import Supervisor
from mlops_console.core.watcher_health import watcher_health
from mlops_console.core.writer import AlertWriter

if TYPE_CHECKING:
    from mlops_console.config.pipelines import PipelineSettings
    from mlops_console.core.auto_rollback import AutoRollback
    from mlops_console.core.pipelines import PipelineWatch
    from mlops_console.core.sources.prometheus import PrometheusSource

log = logging.getLogger("mlops_console.engine")

T = TypeVar("T")

LEASE_TTL = 10.0
LEASE_RENEW = 3.0
STATUS_EVERY = 2.0
STORE_SYNC_EVERY = 5.0
REMIND_EVERY = 30.0
ESCALATE_EVERY = 2.0
"""How late an escalation may be past its channel's `after`, or a page past its maintenance window."""
AUTO_ROLLBACK_EVERY = 1.0
DETECTOR_STATE_EVERY = 10.0
PRUNE_EVERY = 3600.0
"""Seconds between two prunings of history older than `store.history` (a backlog: every round)."""
"""Seconds between writes of what the detectors learnt: a watcher killed with -9 loses at most this,
and never a change of a condition (written within a housekeeping round, 0.5 s)."""
STALL_PROBES = 3
"""A leader whose endpoint has not completed a probe in this many (interval + timeout) is stalled."""
STALL_MIN = 15.0
PENDING = " (pending)"


class EngineFailed(RuntimeError):
    """The engine stopped because one of its tasks kept failing; `watch` exits non-zero."""


class Engine:
    def __init__(
        self, settings: Settings, store: Store, *, owner: str | None = None, read_only: bool = False
    ) -> None:
        self.settings = settings
        self.store = store
        self.read_only = read_only
        """A read-only console's engine still probes and pages, but changes nothing by itself (no
        automatic rollback)."""
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.endpoints = {
            e.name: EndpointState(
                e,
                source=settings.source_of(e),
                health_source="probe" if settings.probes_health(e) else "prometheus",
            )
            for e in settings.endpoints
        }
        self.book = AlertBook(settings)
        self.stats = ScheduleStats()
        probed = [s for s in self.endpoints.values() if s.health_source == "probe"]
        self.sources: list[Source] = [ProbeSource(probed, self.stats)]
        self.prometheus: PrometheusSource | None = None
        if settings.prometheus is not None:
            from mlops_console.core.sources.prometheus import PrometheusSource

            self.prometheus = PrometheusSource(settings, self.endpoints, store)
            self.sources.append(self.prometheus)
        if any(e.inference_log is not None for e in settings.endpoints):
            from mlops_console.core.sources.quality import QualitySource  # numpy, scipy: only when used

            self.sources.append(QualitySource(settings, list(self.endpoints.values()), store))
        self.registry = RegistryWatch(settings)
        self.pipelines: PipelineWatch | None = None
        if settings.pipelines:
            from mlops_console.core.pipelines import PipelineWatch

            self.pipelines = PipelineWatch(settings)
        self.leader = False
        self.follow_owner: str | None = None
        self._followed: tuple[EndpointSnapshot, ...] = ()
        self._followed_health = EngineHealth()
        self._store_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        self._notifier: Notifier | None = None
        self._stop = asyncio.Event()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._last_change_id = 0
        self._gone: set[str] = set()
        """Endpoints gone since the last status write (their rows go from the store with it)."""
        self.cannot_page = settings.missing_env("notifications")
        """Unset variables of notification URLs: this engine only follows (it would take the lease and
        then page nobody, keeping a watcher that can page from taking over)."""
        self._unset_paging = ", ".join(
            sorted({f"${{{name}}}" for n in settings.notifications for name in missing_env(n.template)})
        )
        self.writer = AlertWriter(settings, store, self._notifier_wake)
        self.supervisor = Supervisor(self._fatal)
        self.failure: str | None = None
        self._leading_since = 0.0
        self._store_problem: str | None = None
        self.on_probe: Callable[[str, ProbeResult], None] | None = None
        """Told of every probe result (the watcher's own metrics); called on the engine's loop."""
        self.auto_rollback: AutoRollback | None = None
        """Rolls a bad promote back by itself (`[[auto_rollback]]`), while this engine leads."""
        self.deliveries: collections.Counter[tuple[str, bool]] = collections.Counter()
        """Delivery attempts by `(channel as shown, delivered)` since start, over every notifier."""

    @property
    def registry_state(self) -> str:
        return self.registry.state

    # -- public ----------------------------------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        """What the UI shows: frozen values, never this engine's live state."""
        pipelines, pipelines_state = (
            (self.pipelines.snapshot(), self.pipelines.state)
            if self.pipelines is not None
            else ((), "not configured")
        )
        if not self.leader and self.follow_owner and self.failure is None:
            return EngineSnapshot(
                at=time.time(),
                endpoints=self._followed,
                registry=self.registry.state,
                owner=self.follow_owner,
                engine=self._followed_health,
                pipelines=pipelines,
                pipelines_state=pipelines_state,
            )
        endpoints = tuple(state.snapshot() for state in self.endpoints.values())
        pending = tuple(f"{e.name}:{rule}" for e in endpoints for rule in e.firing if rule.endswith(PENDING))
        return EngineSnapshot(
            at=time.time(),
            endpoints=endpoints,
            registry=self.registry.state,
            owner="this process",
            pending=pending,
            engine=self.health(),
            prometheus=self.prometheus.state if self.prometheus is not None else "not configured",
            pipelines=pipelines,
            pipelines_state=pipelines_state,
        )

    def health(self, now: float | None = None) -> EngineHealth:
        """This engine's own health: failed, degraded (task restarting, store refusing writes), stalled."""
        now = now or time.time()
        if self.failure is not None:
            return EngineHealth("failed", self.failure)
        problems = list(self.supervisor.problems.values())
        if self.writer.failing_since is not None:
            problems.append(
                f"alert store unwritable for {now - self.writer.failing_since:.0f} s "
                f"({self.writer.error}); {len(self.writer.queue)} alert writes queued"
            )
        if self._store_problem:
            problems.append(self._store_problem)
        prometheus = self.prometheus
        if prometheus is not None and prometheus.state not in ("ok", "connecting"):
            problems.append(f"prometheus {prometheus.state}")
        if self.leader:
            for state in self.endpoints.values():
                if state.health_source == "prometheus" and prometheus is not None:
                    # A round that found Prometheus unreachable still ran: not a stalled engine.
                    every, last = prometheus.prom.interval + prometheus.prom.timeout, state.round_at
                else:
                    every, last = state.settings.interval + state.settings.timeout, state.last_probe_at
                allowed = max(STALL_MIN, STALL_PROBES * every)
                since = max(last or 0.0, self._leading_since)
                if now - since > allowed:
                    return EngineHealth(
                        "stalled", f"no probe of {state.name} completed for {now - since:.0f} s"
                    )
        if problems:
            return EngineHealth("degraded", "; ".join(problems))
        return EngineHealth()

    async def run(
        self,
        stop: asyncio.Event | None = None,
        on_snapshot: Callable[[EngineSnapshot], None] | None = None,
        period: float = 1.0,
    ) -> None:
        """Probe (or follow) until `stop` is set; then flush the outbox once and release the lease."""
        self._stop = stop or asyncio.Event()
        self._event_loop = asyncio.get_running_loop()
        if self.cannot_page:
            log.warning("following only, never probing or paging: %s", "; ".join(self.cannot_page))
        self.supervisor.stop = self._stop
        supervise = self.supervisor.start
        tasks = [supervise("lease", self._lease_loop), supervise("alert writer", self.writer.run)]
        if self.registry.configured:
            tasks.append(supervise("registry", lambda: self.registry.run(self.endpoints.values())))
        pipelines = self.pipelines
        if pipelines is not None:
            # Read whether leading or following (the screen shows them either way); judged by the leader.
            tasks.append(supervise("pipelines", lambda: pipelines.run(self._pipeline_judged)))
        if on_snapshot:
            tasks.append(supervise("publish", lambda: self._publish_loop(on_snapshot, period)))
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._step_down()
            self._store_pool.shutdown(wait=True)
        if self.failure is not None:
            raise EngineFailed(self.failure)

    def _fatal(self, reason: str) -> None:
        """A task failed too often: stop, so the service manager restarts a fresh process."""
        self.failure = reason
        self._stop.set()

    async def probe_once(self) -> EngineSnapshot:
        """Observe every endpoint once through every source, without the rules (for `status`)."""
        if self.registry.configured:
            await self.registry.refresh(self.endpoints.values())
        for source in self.sources:
            await source.once()
        if self.pipelines is not None:
            await self.pipelines.read(self.pipelines.pipelines)
        now = time.time()
        for state in self.endpoints.values():
            state.refresh(now)
        return self.snapshot()

    # -- leadership ------------------------------------------------------------------------------------
    async def _lease_loop(self) -> None:
        leader_tasks: list[asyncio.Task[Any]] = []
        try:
            await self._lease_rounds(leader_tasks)
        except Exception:
            # Restarted by the supervisor: lead again from scratch (adopt open alerts, new probe tasks).
            self.leader = False
            raise
        finally:
            # Stopping the engine stops its sources too (and closes their HTTP session).
            await self._stop_leading(leader_tasks)

    async def _lease_rounds(self, leader_tasks: list[asyncio.Task[Any]]) -> None:
        while True:
            try:
                held = (
                    False
                    if self.cannot_page
                    else await self._in_store(self.store.acquire_lease, self.owner, LEASE_TTL)
                )
            except Exception as exc:
                log.warning("store unavailable: %s", exc)
                held = self.leader
            if held and not self.leader:
                log.info("probing %d endpoints", len(self.endpoints), extra={"event": "lease_acquired"})
                leader_tasks[:] = await self._become_leader()
                self.leader, self.follow_owner = True, None
                self._leading_since = time.time()
            elif not held:
                if self.leader:
                    log.warning("lost the store lease; following", extra={"event": "lease_lost"})
                    self.leader = False
                    await self._stop_leading(leader_tasks)
                await self._follow()
            await asyncio.sleep(LEASE_RENEW)

    async def _become_leader(self) -> list[asyncio.Task[Any]]:
        open_alerts = await self._in_store(self.store.open_alerts)
        if not self.writer.queue:
            # What we knew when we last led may be stale (another engine resolved or fired since):
            # the store is the truth now. With writes still queued, our book is newer than the store.
            self.book = AlertBook(self.settings)
        self.book.restore(open_alerts)
        if self.prometheus is not None and self.settings.discover:
            # Endpoints the last leader had discovered: each comes back with discovery or goes after
            # the grace, resolving what it left open (never before discovery has answered).
            rows = await self._in_store(self.store.read_status)
            self.prometheus.remember({r["name"]: r["updated_at"] for r in rows if r.get("discovered")})
        await self._restore_detectors()
        notifier = self._notifier = Notifier(self.settings, self.store, outcomes=self.deliveries)
        supervise = self.supervisor.start
        tasks = []
        for source in self.sources:
            await source.open()
            tasks += [supervise(name, loop) for name, loop in source.loops(self).items()]
        tasks.append(supervise("notifier", lambda: notifier.run(self._stop)))
        tasks.append(supervise("housekeeping", self._housekeeping_loop))
        if self.settings.auto_rollback:
            tasks.append(supervise("auto rollback", self._auto_rollback_loop))
        return tasks

    async def _restore_detectors(self) -> None:
        """Continue with the baselines the last lease holder (this watcher before a restart, or
        another engine) wrote, instead of learning from scratch."""
        saved = await self._in_store(self.store.read_detector_state)
        restored = 0
        for name, state in self.endpoints.items():
            if name in saved:
                restored += len(state.detected.load(saved[name]))
        if restored:
            log.info(
                "detectors continue from the stored state (%d rules)",
                restored,
                extra={"event": "detectors_restored", "rules": restored},
            )

    def _detector_states(self, everything: bool = False) -> dict[str, dict[str, Any]]:
        states = {}
        for name, state in self.endpoints.items():
            taken = state.detected.to_state() if everything else state.detected.take_state()
            if taken:
                states[name] = taken
        return states

    async def _stop_leading(self, leader_tasks: list[asyncio.Task[Any]]) -> None:
        for task in leader_tasks:
            task.cancel()
        await asyncio.gather(*leader_tasks, return_exceptions=True)
        leader_tasks.clear()
        for source in self.sources:
            await source.close()

    async def _follow(self) -> None:
        holder = await self._in_store(self.store.lease_holder)
        waiting = f"cannot page without {self._unset_paging}" if self.cannot_page else "waiting for lease"
        self.follow_owner = holder.who if holder else f"nobody ({waiting})"
        rows = await self._in_store(self.store.read_status)
        self._followed = tuple(EndpointSnapshot.from_dict(row) for row in rows)
        followed = await self._in_store(watcher_health, self.store)
        self._followed_health = followed or EngineHealth()

    async def _step_down(self) -> None:
        await self.writer.close(timeout=self.settings.notify.timeout)
        if not self.leader:
            return
        if self._notifier is not None:
            try:
                await asyncio.wait_for(self._notifier.drain_once(), timeout=self.settings.notify.timeout)
            except Exception as exc:
                log.warning("final notification flush incomplete: %s", exc)
        final = EngineHealth("stopped") if self.failure is None else self.health()
        try:
            rows = [state.snapshot().to_dict() for state in self.endpoints.values()]
            await self._in_store(self.store.write_detector_state, self._detector_states(everything=True))
            await self._in_store(self._write_status, rows, [], final)
            await self._in_store(self.store.release_lease, self.owner)
        except Exception as exc:
            log.warning("could not release the store lease: %s", exc)
        self.leader = False

    # -- what the sources observed -------------------------------------------------------------------
    def probed(self, state: EndpointState, result: ProbeResult, now: float) -> None:
        """The sink of the sources: record the result, then evaluate the endpoint's rules."""
        if self.on_probe is not None and state.health_source == "probe":  # `up{}` readings are no probes
            self.on_probe(state.name, result)
        if state.record(result, now):
            self.registry.wake()  # it serves another version: the registry's answer may be stale too
        self._evaluate(state, now)

    def quality_evaluated(
        self, state: EndpointState, quality: QualitySnapshot, every: float, now: float
    ) -> None:
        """The sink of the quality source: keep the evaluation, then evaluate the endpoint's rules."""
        state.set_quality(quality, every)
        self._evaluate(state, now)

    def endpoint_gone(self, name: str, reason: str, now: float) -> None:
        """The sink of discovery: a discovered endpoint went for good; its open alerts resolve."""
        writes = self.book.retire(name, reason)
        if writes:
            self.writer.submit(writes)
        self._gone.add(name)

    def _evaluate(self, state: EndpointState, now: float) -> None:
        reading = state.reading(now, tuple(self.book.open_rules(state.name)))
        state.set_firing(self._to_book(evaluate(self.settings, reading, state.detected)))

    def _pipeline_judged(self, pipeline: PipelineSettings, conditions: list[Condition]) -> tuple[str, ...]:
        """The sink of the pipeline reads: the leader's book turns their conditions into alerts."""
        if not self.leader:
            return ()
        return self._to_book(conditions)

    def _to_book(self, conditions: list[Condition]) -> tuple[str, ...]:
        """Run conditions through the alert book, submit its writes; the rules firing (or pending)."""
        writes: list[AlertWrite] = []
        firing: list[str] = []
        for condition in conditions:
            writes.extend(self.book.evaluate(condition))
            # A pipeline's metric alerts carry the metric where an endpoint's carry the model.
            name = f"{condition.rule}:{condition.model}" if condition.rule == "run_metric" else condition.rule
            if self.book.is_firing(condition.rule, condition.endpoint, condition.model):
                firing.append(name)
            elif self.book.is_pending(condition.rule, condition.endpoint, condition.model):
                firing.append(name + PENDING)
        if writes:
            self.writer.submit(writes)
        return tuple(firing)

    def _notifier_wake(self) -> None:
        notifier, loop = self._notifier, self._event_loop
        if notifier is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(notifier.wake)

    async def _in_store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_pool, fn, *args)

    # -- periodic work ---------------------------------------------------------------------------------
    async def _housekeeping_loop(self) -> None:
        last = {
            "status": 0.0,
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
                await self._housekeeping_round(last)
            except sqlite3.Error as exc:
                # The store refusing a status write or a read is not a bug: say so and try again. Alert
                # writes have their own queue (AlertWriter), so nothing is lost meanwhile.
                self._store_problem = f"store: {exc}"
                if time.time() - logged_at >= 30.0:
                    logged_at = time.time()
                    log.warning(
                        "store housekeeping failed: %s; retrying", exc, extra={"event": "store_error"}
                    )
            else:
                self._store_problem = None

    async def _housekeeping_round(self, last: dict[str, float]) -> None:
        now = time.time()
        if now - last["status"] >= STATUS_EVERY:
            last["status"] = now
            states = self.endpoints.values()
            rows = [state.snapshot().to_dict() for state in states]
            rollups = [r for r in (state.rollup() for state in states) if r is not None]
            gone = [name for name in self._gone if name not in self.endpoints]
            await self._in_store(self._write_status, rows, rollups, self.health(now), gone)
            self._gone.difference_update(gone)
        if now - last["sync"] >= STORE_SYNC_EVERY:
            last["sync"] = now
            # Alerts opened by other commands (a deploy that did not converge) become ours to resolve.
            self.book.restore(await self._in_store(self.store.open_alerts))
            change_id = await self._in_store(self.store.latest_change_id)
            if change_id != self._last_change_id:
                self._last_change_id = change_id
                self.registry.wake()
        urgent = any(state.detected.urgent for state in self.endpoints.values())
        if urgent or now - last["detectors"] >= DETECTOR_STATE_EVERY:
            last["detectors"] = now
            learnt = self._detector_states()
            if learnt:
                try:
                    await self._in_store(self.store.write_detector_state, learnt)
                except sqlite3.Error:
                    for name in learnt:
                        self.endpoints[name].detected.changed = True  # written next round instead
                    raise
        if now - last["prune"] >= PRUNE_EVERY:
            last["prune"] = now
            pruned = await self._in_store(self.store.prune_history, now - self.settings.store.history)
            if pruned >= 20_000:
                last["prune"] = now - PRUNE_EVERY  # more to prune: again next round
        if now - last["remind"] >= REMIND_EVERY:
            last["remind"] = now
            if await self._in_store(remind_unacknowledged, self.store, self.settings):
                self._notifier_wake()
        if now - last["escalate"] >= ESCALATE_EVERY:
            last["escalate"] = now
            queued = await self._in_store(page_after_maintenance, self.store, self.settings)
            if any(n.escalates for n in self.settings.notifications):
                queued += await self._in_store(escalate_unacknowledged, self.store, self.settings)
            if queued:
                self._notifier_wake()

    async def _auto_rollback_loop(self) -> None:
        from mlops_console.core.auto_rollback import AutoRollback

        runner = self.auto_rollback = AutoRollback(
            self.settings,
            self.store,
            owner=self.owner,
            may_act=lambda: self.leader and not self.read_only and not self._stop.is_set(),
        )
        while True:
            # Its own thread: a rollback waits for deploy hooks and their verification (minutes).
            if await asyncio.to_thread(runner.round):
                self._notifier_wake()
            await asyncio.sleep(AUTO_ROLLBACK_EVERY)

    def _write_status(
        self,
        rows: list[dict[str, Any]],
        rollups: Sequence[Rollup],
        health: EngineHealth,
        gone: Sequence[str] = (),
    ) -> None:
        self.store.write_status(rows, engine={"owner": self.owner, **health.to_dict()}, gone=gone)
        self.store.write_rollups(rollups)

    async def _publish_loop(self, on_snapshot: Callable[[EngineSnapshot], None], period: float) -> None:
        while True:
            try:
                on_snapshot(self.snapshot())
            except Exception:
                log.exception("snapshot consumer failed")
            await asyncio.sleep(period)
