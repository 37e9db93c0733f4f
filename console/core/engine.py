"""The probe engine: schedules probes, keeps series, evaluates rules, stores alerts, drives the notifier.

It runs the same inside the TUI (in its own thread, see `EngineThread`) and in `mlops-console watch`.
One engine per store probes and notifies (the lease); any other follows the store instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mlops_console.config import EndpointSettings, Settings
from mlops_console.core.adapters import Adapter, ProbeResult, create_adapter, new_http_session
from mlops_console.core.alerts import AlertBook, Condition, remind_unacknowledged
from mlops_console.core.notifier import Notifier
from mlops_console.core.promscrape import MetricsError, scrape
from mlops_console.core.rules import (
    MIN_LATENCY_SAMPLES,
    MIN_REQUESTS_FOR_RATIO,
    THROUGHPUT_WARMUP,
    params_for,
    throughput_dropped,
)
from mlops_console.core.secrets import missing as missing_env
from mlops_console.core.series import EndpointSeries, WindowStats, quantile
from mlops_console.core.snapshot import EndpointSnapshot, EngineHealth, EngineSnapshot, ProbeError
from mlops_console.core.store import Store
from mlops_console.core.supervise import Supervisor
from mlops_console.core.writer import AlertWriter

log = logging.getLogger("mlops_console.engine")

LEASE_TTL = 10.0
LEASE_RENEW = 3.0
STATUS_EVERY = 2.0
STORE_SYNC_EVERY = 5.0
REMIND_EVERY = 30.0
RECENT_ERRORS = 20
STALL_PROBES = 3
"""A leader whose endpoint has not completed a probe in this many (interval + timeout) is stalled."""
STALL_MIN = 15.0
WATCHER_STALE = 8.0
"""Seconds without a health update from the lease holder (it writes one every STATUS_EVERY) after which
followers and `status` call it stalled."""


class EngineFailed(RuntimeError):
    """The engine stopped because one of its tasks kept failing; `watch` exits non-zero."""


@dataclass
class EngineStats:
    """Counters for benchmarks and `status`: how well the schedule is kept."""

    probes: int = 0
    scheduled: int = 0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


@dataclass
class EndpointState:
    settings: EndpointSettings
    adapter: Adapter
    series: EndpointSeries
    snapshot: EndpointSnapshot
    recent_errors: deque[ProbeError] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    consecutive_invalid: int = 0
    loading: bool = False
    """The last probe found the server up but its model still loading (see `ProbeResult.loading`)."""
    metrics_error: str | None = None
    minute: int = 0
    minute_latencies: list[float] = field(default_factory=list)
    minute_failures: int = 0
    window_cache: tuple[Any, WindowStats, str] | None = None


def _state_for(endpoint: EndpointSettings) -> EndpointState:
    return EndpointState(
        settings=endpoint,
        adapter=create_adapter(endpoint),
        series=EndpointSeries(interval=endpoint.interval),
        snapshot=EndpointSnapshot(
            name=endpoint.name,
            url=endpoint.url,
            adapter=endpoint.adapter,
            model=endpoint.model,
            alias=endpoint.alias,
        ),
    )


class Engine:
    def __init__(self, settings: Settings, store: Store, *, owner: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.endpoints = {e.name: _state_for(e) for e in settings.endpoints}
        self.book = AlertBook(settings)
        self.stats = EngineStats()
        self.registry_state = "not configured" if not settings.registry.tracking_uri else "connecting"
        self.leader = False
        self.follow_owner: str | None = None
        self._followed: list[EndpointSnapshot] = []
        self._store_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        self._notifier: Notifier | None = None
        self._stop = asyncio.Event()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._registry: Any = None
        self._registry_wake = asyncio.Event()
        self._last_change_id = 0
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
        self._followed_health = EngineHealth()

    # -- public ----------------------------------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        if not self.leader and self.follow_owner and self.failure is None:
            return EngineSnapshot(
                at=time.time(),
                endpoints=list(self._followed),
                registry=self.registry_state,
                owner=self.follow_owner,
                engine=self._followed_health,
            )
        pending = [
            f"{e.settings.name}:{rule}"
            for e in self.endpoints.values()
            for rule in e.snapshot.firing
            if rule.endswith("(pending)")
        ]
        return EngineSnapshot(
            at=time.time(),
            endpoints=[e.snapshot for e in self.endpoints.values()],
            registry=self.registry_state,
            owner="this process",
            pending=pending,
            engine=self.health(),
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
        if self.leader:
            for state in self.endpoints.values():
                allowed = max(STALL_MIN, STALL_PROBES * (state.settings.interval + state.settings.timeout))
                since = max(state.snapshot.last_probe_at or 0.0, self._leading_since)
                if now - since > allowed:
                    return EngineHealth(
                        "stalled", f"no probe of {state.settings.name} completed for {now - since:.0f} s"
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
        if self.settings.registry.tracking_uri:
            tasks.append(supervise("registry", self._registry_loop))
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
        """Probe every endpoint once (and sample metrics twice, a second apart), for `status`."""
        if self.settings.registry.tracking_uri:
            await self._registry_refresh({})
        async with new_http_session() as http:
            await asyncio.gather(
                *(self._scrape(http, s) for s in self.endpoints.values() if s.settings.metrics_url)
            )
            await asyncio.gather(*(self._probe(http, s, evaluate=False) for s in self.endpoints.values()))
            if any(s.settings.metrics_url for s in self.endpoints.values()):
                await asyncio.sleep(1.0)
                await asyncio.gather(
                    *(self._scrape(http, s) for s in self.endpoints.values() if s.settings.metrics_url)
                )
        for state in self.endpoints.values():
            self._refresh_snapshot(state, time.time())
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
            # Stopping the engine stops its probe loops too (and closes their HTTP session).
            for task in leader_tasks:
                task.cancel()
            await asyncio.gather(*leader_tasks, return_exceptions=True)

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
                    for task in leader_tasks:
                        task.cancel()
                    leader_tasks.clear()
                await self._follow()
            await asyncio.sleep(LEASE_RENEW)

    async def _become_leader(self) -> list[asyncio.Task[Any]]:
        open_alerts = await self._in_store(self.store.open_alerts)
        if not self.writer.queue:
            # What we knew when we last led may be stale (another engine resolved or fired since):
            # the store is the truth now. With writes still queued, our book is newer than the store.
            self.book = AlertBook(self.settings)
        self.book.restore(open_alerts)
        notifier = self._notifier = Notifier(self.settings, self.store)
        http = new_http_session()
        supervise = self.supervisor.start
        tasks = [
            supervise(f"probe {state.settings.name}", functools.partial(self._probe_loop, http, state))
            for state in self.endpoints.values()
        ]
        tasks.append(supervise("notifier", lambda: notifier.run(self._stop)))
        tasks.append(supervise("housekeeping", self._housekeeping_loop))
        tasks.append(asyncio.create_task(self._close_on_cancel(http), name="http"))
        return tasks

    @staticmethod
    async def _close_on_cancel(http: aiohttp.ClientSession) -> None:
        """Holds the shared client open while leading; closes it when the leader tasks are cancelled."""
        try:
            await asyncio.Event().wait()
        finally:
            await http.close()

    async def _follow(self) -> None:
        holder = await self._in_store(self.store.lease_holder)
        waiting = f"cannot page without {self._unset_paging}" if self.cannot_page else "waiting for lease"
        self.follow_owner = f"pid {holder['pid']} on {holder['host']}" if holder else f"nobody ({waiting})"
        rows = await self._in_store(self.store.read_status)
        self._followed = [EndpointSnapshot.from_dict(row) for row in rows]
        self._followed_health = await self._in_store(watcher_health, self.store) or EngineHealth()

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
            await self._in_store(
                self._write_status, [e.snapshot.to_dict() for e in self.endpoints.values()], [], final
            )
            await self._in_store(self.store.release_lease, self.owner)
        except Exception as exc:
            log.warning("could not release the store lease: %s", exc)
        self.leader = False

    # -- probing ---------------------------------------------------------------------------------------
    async def _probe_loop(self, http: aiohttp.ClientSession, state: EndpointState) -> None:
        loop = asyncio.get_running_loop()
        interval = state.settings.interval
        # Spread first probes over one interval so a thousand endpoints do not fire in lock-step.
        next_at = loop.time() + random.uniform(0, min(interval, 1.0))
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.stats.scheduled += 1
            self.stats.lags.append(loop.time() - next_at)
            if state.settings.metrics_url:
                await asyncio.gather(self._probe(http, state), self._scrape(http, state))
            else:
                await self._probe(http, state)
            next_at += interval
            now = loop.time()
            if next_at < now:
                # Probes never overlap: a slow endpoint skips its missed slots instead of bursting.
                missed = int((now - next_at) // interval) + 1
                self.stats.scheduled += missed - 1
                next_at += missed * interval

    async def _probe(self, http: aiohttp.ClientSession, state: EndpointState, evaluate: bool = True) -> None:
        try:
            async with asyncio.timeout(state.settings.timeout + 1.0):  # no extra task per probe
                result = await state.adapter.probe(http)
        except Exception as exc:  # an adapter bug must not kill the endpoint's loop
            result = ProbeResult(ok=False, error=f"probe failed: {type(exc).__name__}: {exc}")
        self.stats.probes += 1
        now = time.time()
        self._record(state, result, now)
        if evaluate:
            self._evaluate(state, now)

    async def _scrape(self, http: aiohttp.ClientSession, state: EndpointState) -> None:
        url = state.settings.metrics_url
        assert url is not None
        try:
            sample = await scrape(http, url, state.adapter.metric_names(), state.settings.timeout)
        except MetricsError as exc:
            state.metrics_error = str(exc)
            return
        state.metrics_error = None
        state.series.add_metrics(sample)

    def _record(self, state: EndpointState, result: ProbeResult, now: float) -> None:
        snap = state.snapshot
        snap.probes += 1
        snap.last_probe_at = now
        state.series.add_probe(now, result.latency if result.ok else None)
        self._roll_minute(state, result, now)
        state.loading = result.loading and not result.ok
        if result.ok:
            snap.consecutive_failures = 0
            snap.last_ok_at = now
            if result.served_version is not None and result.served_version != snap.served_version:
                if snap.served_version is not None:
                    self._registry_wake.set()
                snap.served_version = result.served_version
        elif not state.loading:  # a loading server neither failed nor answered: `down` keeps its state
            snap.failures += 1
            snap.consecutive_failures += 1
        if result.valid is False:
            state.consecutive_invalid += 1
        elif result.ok:
            state.consecutive_invalid = 0
        if result.error:
            snap.last_error = result.error
            state.recent_errors.append(ProbeError(at=now, error=result.error, status=result.status))
        elif result.ok:
            snap.last_error = None
        previous = snap.health
        self._refresh_snapshot(state, now)
        if (snap.health != previous and previous != "unknown") or (
            previous == "unknown" and snap.health == "down"
        ):
            log.info(
                "%s is %s%s",
                snap.name,
                snap.health,
                f": {result.error}" if result.error else "",
                extra={"event": "health", "endpoint": snap.name, "health": snap.health},
            )

    def _roll_minute(self, state: EndpointState, result: ProbeResult, now: float) -> None:
        minute = int(now // 60)
        if minute != state.minute:
            state.minute, state.minute_latencies, state.minute_failures = minute, [], 0
        if result.ok and result.latency is not None:
            state.minute_latencies.append(result.latency)
        elif not result.ok:
            state.minute_failures += 1

    def _window(self, state: EndpointState, now: float) -> tuple[WindowStats, str]:
        """Latency and error stats of real traffic where metrics exist, else of our own probes.

        Memoized per (now, series length, newest metrics sample): `_record` and `_evaluate` of one
        probe ask for the same window, and computing it is the engine's largest per-probe cost.
        """
        series = state.series
        key = (
            now,
            len(series.probes),
            series.probes[-1] if series.probes else None,
            series.metrics[-1] if series.metrics else None,
            len(series.metrics),
            state.metrics_error,
        )
        cached = state.window_cache
        if cached is not None and cached[0] == key:
            stats, source = cached[1], cached[2]
            return WindowStats(**vars(stats)), source
        stats, source = self._compute_window(state, now)
        state.window_cache = (key, WindowStats(**vars(stats)), source)
        return stats, source

    def _compute_window(self, state: EndpointState, now: float) -> tuple[WindowStats, str]:
        if state.settings.metrics_url and len(state.series.metrics) >= 2 and state.metrics_error is None:
            stats = state.series.metric_stats(now, 60.0)
            if stats.p95 is not None:
                return stats, "metrics"
            probe = state.series.probe_stats(now)
            stats.p50, stats.p95, stats.p99, stats.samples = probe.p50, probe.p95, probe.p99, probe.samples
            return stats, "probe"
        return state.series.probe_stats(now), "probe"

    def _refresh_snapshot(self, state: EndpointState, now: float) -> None:
        snap = state.snapshot
        stats, source = self._window(state, now)
        snap.p50, snap.p95, snap.p99 = stats.p50, stats.p95, stats.p99
        snap.latency_source = source if stats.p50 is not None else "none"
        snap.error_ratio = stats.error_ratio
        if source == "metrics" or (state.settings.metrics_url and state.metrics_error is None):
            metrics = state.series.metric_stats(now, 60.0)
            snap.rps = metrics.rps
            snap.rps_5m = state.series.metric_stats(now, 300.0).rps
        else:
            snap.rps = snap.rps_5m = None
        snap.latency_history = list(state.series.latency_history)
        snap.rps_history = [rate for _, rate in state.series.rps_history][-60:]
        snap.recent_errors = list(state.recent_errors)
        self._update_health(state)

    @staticmethod
    def _update_health(state: EndpointState) -> None:
        snap = state.snapshot
        if snap.probes == 0:
            snap.health = "unknown"
        elif state.loading:
            snap.health = "loading"
        elif snap.consecutive_failures > 0:
            snap.health = "down"
        elif state.consecutive_invalid or snap.firing or snap.version_mismatch:
            snap.health = "degraded"
        else:
            snap.health = "up"

    # -- rules -----------------------------------------------------------------------------------------
    def conditions(self, state: EndpointState, now: float) -> list[Condition]:
        """Each rule's condition: active, clear, or unknown (None) where the evidence does not say.

        Only evidence clears a condition: `down` after a successful probe, window rules with enough
        samples, `version_mismatch` with both versions known. A restarted engine therefore never
        resolves an open alert just because it has not probed enough yet.
        """
        snap, name, model = state.snapshot, state.settings.name, state.settings.model
        version = snap.served_version or snap.expected_version
        interval = state.settings.interval
        out: list[Condition] = []

        def add(rule: str, active: bool | None, value: float | None, detail: str) -> None:
            params = params_for(self.settings, rule, name)
            if params.enabled:
                out.append(
                    Condition(
                        rule,
                        name,
                        active,
                        params.severity,
                        params.for_,
                        value,
                        params.threshold,
                        detail,
                        model,
                        version,
                        interval,
                    )
                )

        answered = snap.probes > 0 and snap.consecutive_failures == 0 and not state.loading
        down = params_for(self.settings, "down", name)
        reason = f" (last error: {snap.last_error})" if snap.last_error else ""
        add(
            "down",
            _evidence(snap.consecutive_failures >= down.threshold, clear=answered),
            snap.consecutive_failures,
            f"{name} failed {snap.consecutive_failures} consecutive probes "
            f"(threshold {down.threshold:g}){reason}",
        )
        invalid = params_for(self.settings, "invalid_prediction", name)
        add(
            "invalid_prediction",
            _evidence(
                state.consecutive_invalid >= invalid.threshold,
                clear=answered and not state.consecutive_invalid,
            ),
            state.consecutive_invalid,
            f"{name} returned {state.consecutive_invalid} invalid prediction answers in a row{reason}",
        )
        if snap.consecutive_failures == 0:
            # While an endpoint does not answer, `down` says everything: latency, error and throughput
            # conditions keep their last state instead of paging for the same outage (inhibition).
            self._traffic_conditions(state, now, add)
        versions_known = bool(snap.served_version and snap.expected_version)
        add(
            "version_mismatch",
            _evidence(snap.version_mismatch, clear=versions_known),
            None,
            f"{name} serves {model} v{snap.served_version} but {snap.alias or 'the alias'} points to "
            f"v{snap.expected_version}",
        )
        healthy = snap.health in ("up", "degraded") and not snap.version_mismatch
        for rule, alert_model in self.book.open_rules(name):
            if rule == "deploy_not_converged":
                out.append(
                    Condition(
                        rule,
                        name,
                        None if snap.health == "unknown" else not healthy,
                        "critical",
                        0.0,
                        None,
                        None,
                        f"{name} is healthy and serves the expected version again",
                        alert_model,
                        interval=interval,
                    )
                )
        return out

    def _traffic_conditions(
        self, state: EndpointState, now: float, add: Callable[[str, bool | None, float | None, str], None]
    ) -> None:
        snap, name = state.snapshot, state.settings.name
        stats, source = self._window(state, now)
        latency = params_for(self.settings, "latency_p95", name)
        p95 = stats.p95
        add(
            "latency_p95",
            _evidence(
                p95 is not None and p95 > latency.threshold,
                clear=p95 is not None and stats.samples >= MIN_LATENCY_SAMPLES,
            ),
            p95,
            f"{name} latency p95 {_seconds(p95)} > {_seconds(latency.threshold)} "
            f"for {latency.for_:g}s ({source})",
        )
        errors = params_for(self.settings, "error_ratio", name)
        if source == "metrics" or (state.settings.metrics_url and state.metrics_error is None):
            ratio, enough = stats.error_ratio, stats.requests >= MIN_REQUESTS_FOR_RATIO
            add(
                "error_ratio",
                _evidence(
                    bool(enough and ratio is not None and ratio > errors.threshold),
                    clear=enough and ratio is not None,
                ),
                ratio,
                f"{name} error ratio {_percent(ratio)} > {_percent(errors.threshold)} over the last minute "
                f"({stats.requests:.0f} requests)",
            )
        drop = params_for(self.settings, "throughput_drop", name)
        baseline = state.series.throughput_baseline(now)
        dropped, amount = throughput_dropped(snap.rps, baseline, drop.threshold)
        if baseline is not None:
            add(
                "throughput_drop",
                _evidence(dropped, clear=snap.rps is not None and baseline[2] >= THROUGHPUT_WARMUP),
                amount,
                f"{name} throughput {snap.rps or 0:.2f} req/s is {_percent(amount)} below its median "
                f"{baseline[0]:.2f} req/s",
            )

    def _evaluate(self, state: EndpointState, now: float) -> None:
        writes = []
        firing: list[str] = []
        for condition in self.conditions(state, now):
            writes.extend(self.book.evaluate(condition))
            if self.book.is_firing(condition.rule, condition.endpoint, condition.model):
                firing.append(condition.rule)
            elif self.book.is_pending(condition.rule, condition.endpoint, condition.model):
                firing.append(f"{condition.rule} (pending)")
        state.snapshot.firing = firing
        self._update_health(state)
        if writes:
            self.writer.submit(writes)

    def _notifier_wake(self) -> None:
        notifier, loop = self._notifier, self._event_loop
        if notifier is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(notifier.wake)

    async def _in_store(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._store_pool, fn, *args)

    # -- periodic work ---------------------------------------------------------------------------------
    async def _housekeeping_loop(self) -> None:
        last = {"status": 0.0, "sync": 0.0, "remind": 0.0}
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
            rows = [_status_row(e.snapshot) for e in self.endpoints.values()]
            rollups = [self._rollup(e) for e in self.endpoints.values() if e.minute]
            await self._in_store(self._write_status, rows, rollups, self.health(now))
        if now - last["sync"] >= STORE_SYNC_EVERY:
            last["sync"] = now
            # Alerts opened by other commands (a deploy that did not converge) become ours to resolve.
            self.book.restore(await self._in_store(self.store.open_alerts))
            change_id = await self._in_store(self._latest_change_id)
            if change_id != self._last_change_id:
                self._last_change_id = change_id
                self._registry_wake.set()
        if now - last["remind"] >= REMIND_EVERY:
            last["remind"] = now
            if await self._in_store(remind_unacknowledged, self.store, self.settings):
                self._notifier_wake()

    def _latest_change_id(self) -> int:
        rows = self.store.query("SELECT max(id) AS id FROM audit WHERE action IN ('promote', 'rollback')")
        return rows[0]["id"] or 0

    def _write_status(
        self, rows: list[dict[str, Any]], rollups: list[dict[str, Any]], health: EngineHealth
    ) -> None:
        self.store.write_status(rows, engine={"owner": self.owner, **health.to_dict()})
        self.store.write_rollups(rollups)

    def _rollup(self, state: EndpointState) -> dict[str, Any]:
        latencies = sorted(state.minute_latencies)
        probes = len(latencies) + state.minute_failures
        return {
            "endpoint": state.settings.name,
            "minute": state.minute,
            "probes": probes,
            "failures": state.minute_failures,
            "p50": quantile(latencies, 0.5),
            "p95": quantile(latencies, 0.95),
            "p99": quantile(latencies, 0.99),
            "rps": state.snapshot.rps,
            "error_ratio": state.snapshot.error_ratio,
        }

    async def _publish_loop(self, on_snapshot: Callable[[EngineSnapshot], None], period: float) -> None:
        while True:
            try:
                on_snapshot(self.snapshot())
            except Exception:
                log.exception("snapshot consumer failed")
            await asyncio.sleep(period)

    # -- registry --------------------------------------------------------------------------------------
    async def _registry_loop(self) -> None:
        """Which version each endpoint's alias points to, and its synthetic request, off the loop."""
        examples: dict[tuple[str, str], dict[str, Any] | None] = {}
        while True:
            self._registry_wake.clear()
            await self._registry_refresh(examples)
            # Sooner than `refresh` when a promote/rollback or a redeploy makes the answer stale.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registry_wake.wait(), self.settings.registry.refresh)

    async def _registry_refresh(self, examples: dict[tuple[str, str], dict[str, Any] | None]) -> None:
        try:
            if self._registry is None:
                self._registry = await asyncio.to_thread(_registry_client, self.settings)
            client = self._registry
            versions: dict[tuple[str, str], str | None] = {}
            for state in self.endpoints.values():
                model = state.settings.model
                if not model:
                    continue
                key = (model, state.settings.alias or self.settings.alias_for(model))
                if key not in versions:
                    versions[key] = await asyncio.to_thread(client.alias_version, *key)
                version = versions[key]
                state.snapshot.expected_version = version
                state.snapshot.alias = key[1]
                if state.adapter.wants_example and version is not None:
                    if (model, version) not in examples:
                        examples[(model, version)] = await asyncio.to_thread(
                            client.serving_input_example, model, version
                        )
                    example = examples[(model, version)]
                    if example:
                        state.adapter.set_example(example)
            if self.registry_state != "ok":
                log.info("registry reachable", extra={"event": "registry", "state": "ok"})
            self.registry_state = "ok"
        except Exception as exc:
            message = str(exc) if str(exc).startswith("registry") else f"registry unreachable: {exc}"
            if self.registry_state != message:
                log.warning("%s", message, extra={"event": "registry", "state": "unreachable"})
            self.registry_state = message


def watcher_health(store: Store, now: float | None = None) -> EngineHealth | None:
    """The lease holder's health as it last wrote it, or `stalled` when it stopped writing it or let
    its lease expire without releasing it; None when no engine holds or left a lease."""
    now = now or time.time()
    rows = store.query("SELECT * FROM lease WHERE name='engine'")
    if not rows:
        # Released: on a clean stop (nothing to report), or by an engine that gave up (say so).
        last = store.query("SELECT * FROM engine_health ORDER BY updated_at DESC LIMIT 1")
        if last and last[0]["state"] == "failed":
            return EngineHealth("failed", last[0]["reason"])
        return None
    lease = rows[0]
    who = f"pid {lease['pid']} on {lease['host']}"
    if lease["expires_at"] <= now:
        return EngineHealth(
            "stalled", f"{who}: lease expired {now - lease['expires_at']:.0f} s ago, nothing probes"
        )
    row = store.engine_health(lease["owner"])
    if row is None:
        if now - lease["acquired_at"] > WATCHER_STALE:
            return EngineHealth("stalled", f"{who} holds the lease but never reported its health")
        return EngineHealth()
    if now - row["updated_at"] > WATCHER_STALE:
        return EngineHealth("stalled", f"{who}: no store update for {now - row['updated_at']:.0f} s")
    return EngineHealth(row["state"], row["reason"])


_SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(EndpointSnapshot))


def _status_row(snap: EndpointSnapshot) -> dict[str, Any]:
    """`snap.to_dict()` without `dataclasses.asdict`'s deep copy: ~10x faster, the same dict.

    Runs on the event loop for every endpoint every STATUS_EVERY seconds; asdict took ~70 ms per
    1000 endpoints, which showed up as schedule lag.
    """
    row = {name: getattr(snap, name) for name in _SNAPSHOT_FIELDS}
    row["latency_history"] = list(snap.latency_history)
    row["rps_history"] = list(snap.rps_history)
    row["firing"] = list(snap.firing)
    row["recent_errors"] = [{"at": e.at, "error": e.error, "status": e.status} for e in snap.recent_errors]
    row["version_mismatch"] = snap.version_mismatch
    return row


def _registry_client(settings: Settings) -> Any:
    from mlops_console.core.registry import RegistryClient

    return RegistryClient(settings.registry)


def _evidence(active: bool, *, clear: bool) -> bool | None:
    """A condition's state: active, clear when the evidence says so, otherwise unknown (None)."""
    if active:
        return True
    return False if clear else None


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


class EngineThread:
    """Runs an Engine in a thread with its own event loop, so a UI's loop never waits on probes."""

    def __init__(
        self,
        settings: Settings,
        on_snapshot: Callable[[EngineSnapshot], None],
        period: float = 1.0,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.on_snapshot = on_snapshot
        self.period = period
        self._store = store
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.engine: Engine | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # surfaced to the UI, which decides how to show it
            self.error = exc
            log.exception("engine stopped")
            self._ready.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = self._store or await asyncio.to_thread(Store, self.settings.store.path)
        self.engine = Engine(self.settings, store)
        self._ready.set()
        await self.engine.run(self._stop, on_snapshot=self.on_snapshot, period=self.period)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
