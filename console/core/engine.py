"""The engine's run loop: hold the lease, run the sources, evaluate the rules, write, publish.

It runs the same inside the TUI (in its own thread, see `engine_thread`) and in `mlops-console watch`.
One engine per store probes and notifies (the lease); any other follows the store instead. What it
is made of lives beside it: the lease and leading or following (`engine_lease`), the periodic work
while leading (`housekeeping`), per-endpoint state (`endpoint_state`), where figures come from
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
import time
import uuid
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_console.config import Settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.alerts import (
    AlertBook,
    AlertWrite,
)
from mlops_console.core.conditions import Condition, evaluate, judged_quietly
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.engine_lease import lease_loop, step_down
from mlops_console.core.housekeeping import ESCALATE_EVERY as ESCALATE_EVERY  # where callers found it
from mlops_console.core.housekeeping import write_status
from mlops_console.core.notifier import Notifier
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.registry_watch import RegistryWatch
from mlops_console.core.secrets import missing as missing_env
from mlops_console.core.snapshot import EndpointSnapshot, EngineHealth, EngineSnapshot
from mlops_console.core.sources import ProbeSource, ScheduleStats, Source
from mlops_console.core.status_rows import StatusRows
from mlops_console.core.store import Store
from mlops_console.core.supervise import Supervisor
from mlops_console.core.writer import AlertWriter

if TYPE_CHECKING:
    from mlops_console.config.pipelines import PipelineSettings
    from mlops_console.core.auto_rollback import AutoRollback
    from mlops_console.core.pipelines import PipelineWatch
    from mlops_console.core.sources.prometheus import PrometheusSource

log = logging.getLogger("mlops_console.engine")

T = TypeVar("T")

STALL_PROBES = 3
"""A leader whose endpoint has not completed a probe in this many (interval + timeout) is stalled."""
STALL_MIN = 15.0
PENDING = " (pending)"


class EngineFailed(RuntimeError):
    """The engine stopped because one of its tasks kept failing; `watch` exits non-zero."""


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        owner: str | None = None,
        read_only: bool = False,
        settles_removed: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.read_only = read_only
        """A read-only console's engine still probes and pages, but changes nothing by itself (no
        automatic rollback)."""
        self.settles_removed = settles_removed
        """Resolve, on leading, the open alerts of endpoints the configuration no longer has: the
        watcher's engine, whose configuration is the fleet's (`takeover`)."""
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
        self.found_endpoints: set[str] = set()
        """Endpoints discovery found, new to this engine, whose stored detector state is not read yet."""
        self.remembered_rows: dict[str, EndpointSnapshot] = {}
        """Endpoints discovered before a restart, as shown while discovery has not found them again."""
        self.foreign_rows: frozenset[str] = frozenset()
        """Status rows of endpoints this engine lacks that it leaves in the store when it prunes: in a
        console (its configuration may be partial), those of endpoints a watcher discovered, whose alerts
        the next watcher leaves to discovery's grace (`takeover`)."""
        self.removed_endpoints: dict[str, str] = {}
        """Endpoints and pipelines (`pipeline:NAME`) with open alerts the configuration no longer has
        (see `takeover`)."""
        self.status_rows = StatusRows()
        """What the store holds of each endpoint's status row and rollup, as this engine wrote it."""
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
        self.lease_until: float | None = None
        """The earliest the store lease this engine last held could pass to another (see `renew_lease`)."""
        self.left_leading: tuple[float, frozenset[str]] | None = None
        """When this engine last stopped leading, and the endpoints whose detectors it had then: theirs
        are newer than what it stored before, unless another lease holder stored some since."""
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
        if self.remembered_rows and self.prometheus is not None:
            waiting = self.prometheus.remembered
            endpoints += tuple(e for name, e in self.remembered_rows.items() if name in waiting)
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
            # Asked every few seconds for every endpoint of a fleet: what is the same for all, once.
            by_round = None if prometheus is None else prometheus.prom.interval + prometheus.prom.timeout
            leading_since = self._leading_since
            for state in self.endpoints.values():
                if by_round is not None and state.health_source == "prometheus":
                    # A round that found Prometheus unreachable still ran: not a stalled engine.
                    every, last = by_round, state.round_at
                else:
                    every, last = state.settings.interval + state.settings.timeout, state.last_probe_at
                allowed = max(STALL_MIN, STALL_PROBES * every)
                since = max(last or 0.0, leading_since)
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
        tasks = [supervise("lease", lambda: lease_loop(self)), supervise("alert writer", self.writer.run)]
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
            await step_down(self)
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

    def endpoints_found(self, names: Collection[str]) -> None:
        """The sink of discovery: endpoints new to this engine, whose detectors continue from the
        state stored for them (at the next housekeeping round, off this loop)."""
        self.found_endpoints.update(names)

    def endpoint_gone(self, name: str, reason: str, now: float) -> None:
        """The sink of discovery: a discovered endpoint went for good; its open alerts resolve."""
        self.retire(name, reason)
        self._gone.add(name)

    def retire(self, name: str, reason: str) -> None:
        """Nothing will judge `name` (an endpoint or `pipeline:NAME`) again: its open alerts resolve,
        saying `reason`."""
        writes = self.book.retire(name, reason)
        if writes:
            self.writer.submit(writes)

    def _evaluate(self, state: EndpointState, now: float) -> None:
        settings, resolved = self.settings, state.rule_params
        if not state.firing and self.book.holds_nothing(state.name):
            # Most probes of a fleet: nothing open or pending and every value inside its limit. Then
            # no rule can start, fire or resolve anything, and building each condition (its text,
            # its evidence) and asking the book would change nothing. The same once the detectors
            # judged the values due and none holds.
            reading = state.reading(now)
            if judged_quietly(settings, reading, state.detected, resolved):
                return
        else:
            reading = state.reading(now, tuple(self.book.open_rules(state.name)))
        state.set_firing(self._to_book(evaluate(settings, reading, state.detected, resolved)))

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

    async def write_status(self, now: float | None = None) -> None:
        """The status rows and rollups that changed since the last write, the rows of endpoints
        gone, and this engine's health (see `housekeeping.write_status`)."""
        await write_status(self, now)

    async def _publish_loop(self, on_snapshot: Callable[[EngineSnapshot], None], period: float) -> None:
        while True:
            try:
                on_snapshot(self.snapshot())
            except Exception:
                log.exception("snapshot consumer failed")
            await asyncio.sleep(period)
