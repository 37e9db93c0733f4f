"""One endpoint inside the engine: what its probes and metrics said, rolled up, and published frozen.

`EndpointState` is mutable and lives on the engine's event loop only. Whatever leaves the loop (to the
UI thread, the store, the rules) is built from it: `snapshot()` (a frozen `EndpointSnapshot`, rebuilt
only after something changed), `reading()` (what the rules see), `status_row()` and `rollup()`.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from mlops_console.config import EndpointSettings, MetricNames
from mlops_console.core.adapters import Adapter, ProbeResult, create_adapter
from mlops_console.core.conditions import DetectedRules, Reading, RuleParams
from mlops_console.core.minute_rollup import ProbeMinute
from mlops_console.core.packed import PackedFloats
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.series import RPS_STEP, EndpointSeries, MetricsSample, WindowStats
from mlops_console.core.snapshot import EndpointSnapshot, Health, ProbeError
from mlops_console.core.store import Rollup

log = logging.getLogger("mlops_console.engine")

RECENT_ERRORS = 20
RPS_HISTORY_POINTS = 60
PROM_LATENCY_POINTS = 20
"""Prometheus' medians kept for the sparkline of an endpoint no probe times (one a round: 5 min at 15 s)."""


@dataclass(frozen=True, slots=True)
class PromFigures:
    """One evaluation of the endpoint's signals in Prometheus (None: no series answered)."""

    at: float
    rps: float | None
    error_ratio: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    window: float
    """Seconds the rates are taken over (`[prometheus] window`)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Latency and error figures of the last minute: of real traffic where metrics exist, else of our
    own probes. Computed once per probe; the snapshot and every rule use the same one."""

    stats: WindowStats
    source: str
    """`metrics`, `probe` or `prometheus`."""


class EndpointState:
    """The engine's mutable view of one endpoint. Every change goes through a method here."""

    # Slotted: a fleet keeps 10,000 of these, and each one's attribute dict took about 1.5 KB.
    __slots__ = (
        "_frozen", "_metric_names", "_minute", "_recent_errors", "_rolled", "adapter", "alias",
        "backfilled", "consecutive_failures", "consecutive_invalid", "detected", "discovered",
        "expected_version", "failures", "firing", "health", "health_source", "last_error",
        "last_ok_at", "last_probe_at", "loading", "metrics_error", "missing_since", "name", "probes",
        "prom", "prom_latencies", "quality", "quality_interval", "round_at", "rps", "rps_5m",
        "rule_params", "series", "served_version", "settings", "slot", "source", "stale", "window",
    )  # fmt: skip

    def __init__(
        self,
        settings: EndpointSettings,
        adapter: Adapter | None = None,
        *,
        source: str = "probe",
        health_source: str = "probe",
        discovered: bool = False,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        """`settings.name`, read for every endpoint several times a round (a plain attribute: it
        never changes)."""
        self.discovered = discovered
        """Found by a `[[discover]]` table (it goes when its target goes)."""
        self.source = source
        """Where the figures come from: `probe` (our probes and scrapes) or `prometheus`."""
        self.health_source = health_source
        """Where health comes from: `probe`, or `prometheus` (the target's `up{}`)."""
        self.prom: PromFigures | None = None
        self.stale: str | None = None
        """Why the figures shown are the last good ones (Prometheus unreachable, a bad answer...)."""
        self.round_at: float | None = None
        """When the Prometheus source last tried to read this endpoint (answered or not)."""
        self.prom_latencies = PackedFloats()
        """The recent medians Prometheus gave, oldest first: the sparkline where no probe times the
        endpoint. Immutable, so the snapshot shares it instead of copying a ring."""
        self.backfilled = False
        """Its throughput history was read back from Prometheus (or there was none)."""
        self.missing_since: float | None = None
        """A discovered endpoint no `[[discover]]` table finds any more, since then (held until it
        comes back or its grace runs out)."""
        self.adapter = adapter or create_adapter(settings)
        self.series = EndpointSeries(interval=settings.interval)
        self._recent_errors: deque[ProbeError] | None = None
        self.consecutive_invalid = 0
        self.loading = False
        """The last probe found the server up but its model still loading (see `ProbeResult.loading`)."""
        self.metrics_error: str | None = None
        self._metric_names: MetricNames | None = None
        # What the snapshot shows (see EndpointSnapshot for the meaning of each).
        self.alias = settings.alias
        self.health: Health = "unknown"
        self.expected_version: str | None = None
        self.served_version: str | None = None
        self.window = Window(WindowStats(), "probe")
        self.rps: float | None = None
        self.rps_5m: float | None = None
        self.last_ok_at: float | None = None
        self.last_probe_at: float | None = None
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self.probes = 0
        self.failures = 0
        self.firing: tuple[str, ...] = ()
        self.quality: QualitySnapshot | None = None
        self.quality_interval = 0.0
        self.detected = DetectedRules()
        """The detector-judged rules' learnt state (baselines, recent verdicts)."""
        self.rule_params: dict[str, RuleParams] = {}
        """The rules' parameters for this endpoint, resolved once (an engine's settings never change)."""
        self._minute = ProbeMinute()
        self._frozen: EndpointSnapshot | None = None
        self._rolled: tuple[EndpointSnapshot, Rollup | None] | None = None
        """The rollup taken with the snapshot it was taken with: everything a rollup is made of (the
        minute's probes, the window, the rate, staleness) changes only with a new snapshot."""
        self.slot = hash(settings.name)
        """Which slice of the endpoints its status row is written with (see `housekeeping`)."""

    @property
    def version_mismatch(self) -> bool:
        return bool(
            self.expected_version and self.served_version and self.expected_version != self.served_version
        )

    @property
    def recent_errors(self) -> tuple[ProbeError, ...]:
        """The last RECENT_ERRORS errors, oldest first."""
        return () if self._recent_errors is None else tuple(self._recent_errors)

    # -- what the sources report ---------------------------------------------------------------------
    def record(self, result: ProbeResult, now: float) -> bool:
        """One probe's result. True when the endpoint now serves another version than it did (the
        registry's answer may be stale)."""
        self.probes += 1
        self.last_probe_at = now
        if self.health_source == "probe":  # an `up{}` reading has no latency, and no window reads it
            self.series.add_probe(now, result.latency if result.ok else None)
        self._minute.add(result, now)
        version_changed = False
        self.loading = result.loading and not result.ok
        if result.ok:
            self.consecutive_failures = 0
            self.last_ok_at = now
            if result.served_version is not None and result.served_version != self.served_version:
                version_changed = self.served_version is not None
                self.served_version = result.served_version
        elif not self.loading:  # a loading server neither failed nor answered: `down` keeps its state
            self.failures += 1
            self.consecutive_failures += 1
        if result.valid is False:
            self.consecutive_invalid += 1
        elif result.ok:
            self.consecutive_invalid = 0
        if result.error:
            self.last_error = result.error
            if self._recent_errors is None:  # most endpoints never fail: no ring until one does
                self._recent_errors = deque(maxlen=RECENT_ERRORS)
            self._recent_errors.append(ProbeError(at=now, error=result.error, status=result.status))
        elif result.ok:
            self.last_error = None
        previous = self.health
        self.refresh(now)
        if (self.health != previous and previous != "unknown") or (
            previous == "unknown" and self.health == "down"
        ):
            log.info(
                "%s is %s%s",
                self.name,
                self.health,
                f": {result.error}" if result.error else "",
                extra={"event": "health", "endpoint": self.name, "health": self.health},
            )
        return version_changed

    def add_metrics(self, sample: MetricsSample, names: MetricNames) -> None:
        """One scrape, reduced with `names`. An adapter may change which series it reads once it
        knows more (BentoML's route from its schema, Triton from `/v2`): samples of another selection
        are not comparable, and a drop between them would read as a restart, so they are dropped."""
        self.metrics_error = None
        if names != self._metric_names:
            self.series.metrics.clear()
            self._metric_names = names
        self.series.add_metrics(sample)
        self._frozen = None

    def set_prometheus(self, figures: PromFigures, *, probe_follows: bool = False) -> None:
        """A fresh evaluation of the endpoint's signals in Prometheus. `probe_follows`: its `up{}`
        reading is recorded next, at `figures.at`, which refreshes the window then (once a round for
        each of a fleet's endpoints, refreshing it twice was a tenth of the round)."""
        self.prom, self.stale, self.round_at = figures, None, figures.at
        history = self.series.rps_history
        if figures.rps is not None and (not history or figures.at - history[-1][0] >= RPS_STEP):
            history.append((figures.at, figures.rps))
        if figures.p50 is not None and self.health_source == "prometheus":
            # Rounded as probe latencies are: these go into the status row's JSON.
            self.prom_latencies = self.prom_latencies.then(round(figures.p50, 6), PROM_LATENCY_POINTS)
        if probe_follows:
            self._frozen = None
        else:
            self.refresh(figures.at)

    def prometheus_failed(self, reason: str, now: float) -> None:
        """Prometheus gave no usable answer: keep the last figures, marked stale, and judge nothing on
        them (no rule sees a rate it cannot trust: no false "throughput dropped")."""
        self.stale, self.round_at = reason, now
        self._frozen = None

    def hold(self, reason: str, now: float) -> None:
        """Not read this round, on purpose (its target is missing): the figures shown are the last ones,
        marked stale with `reason`, and nothing judges them."""
        self.stale, self.round_at = reason, now
        self._frozen = None

    def metrics_failed(self, error: str) -> None:
        self.metrics_error = error
        self._frozen = None

    def expect(self, version: str | None, alias: str) -> None:
        """What the registry says this endpoint should serve."""
        if (version, alias) != (self.expected_version, self.alias):
            self.expected_version, self.alias = version, alias
            self._frozen = None

    def set_quality(self, quality: QualitySnapshot, every: float) -> None:
        """The last evaluation of the endpoint's inference log."""
        self.quality, self.quality_interval = quality, every
        self._frozen = None

    def set_firing(self, firing: tuple[str, ...]) -> None:
        """The rules firing (or pending) for this endpoint after the last evaluation."""
        self.firing = firing
        self._update_health()
        self._frozen = None

    # -- derived figures -----------------------------------------------------------------------------
    @property
    def traffic_measured(self) -> bool:
        """Metrics are configured and being read, so rates and error ratios describe real traffic."""
        if self.source == "prometheus":
            return self.prom is not None and self.stale is None
        return bool(self.settings.metrics_url) and self.metrics_error is None

    def compute_window(self, now: float) -> Window:
        if self.source == "prometheus":
            f = self.prom
            if f is None:
                return Window(WindowStats(), "prometheus")
            requests = (f.rps or 0.0) * f.window
            stats = WindowStats(
                rps=f.rps,
                error_ratio=f.error_ratio,
                requests=requests,
                p50=f.p50,
                p95=f.p95,
                p99=f.p99,
                samples=requests if f.p95 is not None else 0.0,
            )
            return Window(stats, "prometheus")
        series = self.series
        if self.settings.metrics_url and len(series.metrics) >= 2 and self.metrics_error is None:
            stats = series.metric_stats(now, 60.0)
            if stats.p95 is not None:
                return Window(stats, "metrics")
            probe = series.probe_stats(now)
            stats.p50, stats.p95, stats.p99, stats.samples = probe.p50, probe.p95, probe.p99, probe.samples
            stats.latencies, stats.buckets = probe.latencies, ()
            return Window(stats, "probe")
        return Window(series.probe_stats(now), "probe")

    def refresh(self, now: float) -> None:
        """Recompute the window and the rates from the series (after a probe, or for `status`)."""
        self.window = window = self.compute_window(now)
        if window.source == "prometheus":
            self.rps = window.stats.rps
            self.rps_5m = None
        elif window.source == "metrics" or self.traffic_measured:
            self.rps = self.series.metric_stats(now, 60.0).rps
            self.rps_5m = self.series.metric_stats(now, 300.0).rps
        else:
            self.rps = self.rps_5m = None
        self._update_health()
        self._frozen = None

    def _update_health(self) -> None:
        if self.probes == 0:
            self.health = "unknown"
        elif self.loading:
            self.health = "loading"
        elif self.consecutive_failures > 0:
            self.health = "down"
        elif self.consecutive_invalid or self.firing or self.version_mismatch:
            self.health = "degraded"
        else:
            self.health = "up"

    # -- what leaves the event loop ------------------------------------------------------------------
    def snapshot(self) -> EndpointSnapshot:
        """The endpoint as of now, frozen; the same object until something changes."""
        if self._frozen is None:
            s, stats = self.settings, self.window.stats
            self._frozen = EndpointSnapshot(
                name=s.name,
                url=s.url,
                adapter=s.adapter,
                model=s.model,
                alias=self.alias,
                health=self.health,
                expected_version=self.expected_version,
                served_version=self.served_version,
                p50=stats.p50,
                p95=stats.p95,
                p99=stats.p99,
                latency_source="none" if stats.p50 is None else self.window.source,  # type: ignore[arg-type]
                rps=self.rps,
                rps_5m=self.rps_5m,
                error_ratio=stats.error_ratio,
                latency_history=self.prom_latencies or self.series.latencies(),
                rps_history=self.series.rps_history.values(RPS_HISTORY_POINTS),
                last_ok_at=self.last_ok_at,
                last_probe_at=self.last_probe_at,
                last_error=self.last_error,
                consecutive_failures=self.consecutive_failures,
                probes=self.probes,
                failures=self.failures,
                recent_errors=self.recent_errors,
                firing=self.firing,
                quality=self.quality,
                detection=self.detected.describe(),
                stale=self.stale,
                health_source=self.health_source,  # type: ignore[arg-type]
                bands=self.detected.bands(),
                discovered=self.discovered,
                prometheus_id=s.group_value if self.source == "prometheus" else None,
            )
        return self._frozen

    def reading(self, now: float, adopted: tuple[tuple[str, str | None], ...] = ()) -> Reading:
        """What the rules see, from the window computed by the last `refresh`. Stale figures are
        shown, never judged."""
        stale = self.stale is not None
        return Reading(
            endpoint=self.name,
            model=self.settings.model,
            now=now,
            interval=self.settings.interval,
            health=self.health,
            probes=self.probes,
            consecutive_failures=self.consecutive_failures,
            consecutive_invalid=self.consecutive_invalid,
            last_error=self.last_error,
            served_version=self.served_version,
            expected_version=self.expected_version,
            alias=self.alias,
            window=WindowStats() if stale else self.window.stats,
            window_source=self.window.source,
            traffic_measured=self.traffic_measured,
            rps=None if stale else self.rps,
            throughput_baseline=self.series.throughput_baseline(now),
            adopted=adopted,
            quality=self.quality,
            quality_interval=self.quality_interval,
        )

    def rollup(self) -> Rollup | None:
        """This minute's probes and traffic so far (None before the first probe)."""
        # Where Prometheus gives the figures, its quantiles of real traffic are the minute's latency
        # (there are no probe latencies to take them from).
        frozen, rolled = self._frozen, self._rolled
        if frozen is not None and rolled is not None and rolled[0] is frozen:
            return rolled[1]  # taken every 2 s for every endpoint; a Prometheus-read one changes each round
        traffic = self.window.source == "prometheus" and self.stale is None
        rollup = self._minute.rollup(self.name, self.window.stats, self.rps, traffic_quantiles=traffic)
        self._rolled = None if frozen is None else (frozen, rollup)
        return rollup
