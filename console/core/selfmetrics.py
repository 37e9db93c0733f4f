"""The watcher as a Prometheus target: its own view of the fleet, and its own health, as `/metrics`.

The page is served by a thread of its own (prometheus_client's HTTP server), never by the engine's
event loop. That thread reads only what the loop handed over: `update` (on the loop, once a second)
replaces a frozen `SelfView` whole, and probe results are counted under a lock as they arrive.
Names follow Prometheus' conventions: the `mlops_console_` prefix, seconds, `_total` counters.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from mlops_console.core.adapters import ProbeResult
from mlops_console.core.snapshot import EndpointSnapshot, EngineHealth

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

PREFIX = "mlops_console_"
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the probe latency histogram, as prometheus_client's defaults."""
HEALTHS = ("up", "degraded", "loading", "down", "unknown")
ENGINE_STATES = ("running", "degraded", "stalled", "failed", "stopped")
LAG_WINDOW = 1000
"""Recent probe schedule lags the lag quantile is taken over."""

EXPORTED = (
    "watchdog",
    "build_info",
    "engine_state",
    "engine_lag_seconds",
    "probe_schedule_lag_seconds",
    "leader",
    "lease_holder_info",
    "endpoint_up",
    "endpoint_health",
    "endpoint_version_info",
    "endpoint_requests_per_second",
    "endpoint_error_ratio",
    "endpoint_latency_seconds",
    "probe_duration_seconds",
    "probes_total",
    "alerts_firing",
    "notifications_total",
    "heartbeats_total",
)
"""Every family this module exports, without the prefix, named as Prometheus stores it (counters with
`_total`, info families with `_info`): the shipped dashboard and rules may use only these."""


def series_names() -> frozenset[str]:
    """Every series name the page can hold (a histogram's `_bucket`, `_count` and `_sum` included)."""
    histogram = PREFIX + "probe_duration_seconds"
    suffixed = {histogram + suffix for suffix in ("_bucket", "_count", "_sum")}
    return frozenset({PREFIX + name for name in EXPORTED if name != "probe_duration_seconds"} | suffixed)


@dataclass(frozen=True)
class SelfView:
    """What the engine's loop last handed to the scrape thread."""

    endpoints: tuple[EndpointSnapshot, ...] = ()
    engine: EngineHealth = field(default_factory=EngineHealth)
    leader: bool = False
    owner: str = ""
    loop_lag: float = 0.0
    schedule_lag_p99: float | None = None
    firing: Mapping[tuple[str, str], int] = field(default_factory=dict)
    deliveries: Mapping[tuple[str, bool], int] = field(default_factory=dict)


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(PROBE_BUCKETS) + 1)
        self.sum = 0.0


class SelfMetrics:
    """A prometheus_client collector over the latest `SelfView` and the probe counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._view = SelfView()
        self._lock = threading.Lock()
        self._latency: dict[str, _Histogram] = {}
        self._probes: dict[tuple[str, str], int] = {}
        self._heartbeats: dict[str, int] = {}
        self.registry.register(self)

    # -- fed from the engine's loop ------------------------------------------------------------------
    def probed(self, endpoint: str, result: ProbeResult) -> None:
        """One probe result (an `Engine.on_probe` hook)."""
        with self._lock:
            key = (endpoint, "ok" if result.ok else "failed")
            self._probes[key] = self._probes.get(key, 0) + 1
            if result.ok and result.latency is not None:
                histogram = self._latency.get(endpoint)
                if histogram is None:
                    histogram = self._latency[endpoint] = _Histogram()
                histogram.counts[bisect.bisect_left(PROBE_BUCKETS, result.latency)] += 1
                histogram.sum += result.latency

    def heartbeat(self, outcome: str) -> None:
        """One heartbeat call: `sent` or `failed`."""
        with self._lock:
            self._heartbeats[outcome] = self._heartbeats.get(outcome, 0) + 1

    def update(self, engine: Engine, loop_lag: float) -> None:
        """Take what the scrape thread shows from `engine` (on its loop: the engine's state is not
        safe to read from any other thread)."""
        lags = list(engine.stats.lags)[-LAG_WINDOW:]
        p99 = sorted(lags)[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None
        snapshot = engine.snapshot()
        self._view = SelfView(
            endpoints=snapshot.endpoints,
            engine=snapshot.engine,
            leader=engine.leader,
            owner=engine.owner if engine.leader else (engine.follow_owner or ""),
            loop_lag=loop_lag,
            schedule_lag_p99=p99,
            firing=dict(engine.book.firing_counts()) if engine.leader else {},
            deliveries=dict(engine.deliveries),
        )

    # -- read by the scrape thread ----------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        view = self._view
        yield from self._engine_families(view)
        yield from self._endpoint_families(view.endpoints)
        yield from self._counted_families()
        firing = GaugeMetricFamily(
            PREFIX + "alerts_firing", "Alerts firing, by rule and severity.", labels=["rule", "severity"]
        )
        for (rule, severity), count in sorted(view.firing.items()):
            firing.add_metric([rule, severity], count)
        yield firing
        notifications = CounterMetricFamily(
            PREFIX + "notifications",
            "Notification delivery attempts, by channel (redacted URL) and outcome.",
            labels=["channel", "outcome"],
        )
        for (channel, ok), count in sorted(view.deliveries.items()):
            notifications.add_metric([channel, "delivered" if ok else "failed"], count)
        yield notifications

    @staticmethod
    def _engine_families(view: SelfView) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            PREFIX + "watchdog",
            "Always 1 while the watcher serves this page: an Alertmanager Watchdog rule fires on it.",
            value=1,
        )
        yield InfoMetricFamily(PREFIX + "build", "The console's version.", value={"version": _version()})
        state = GaugeMetricFamily(
            PREFIX + "engine_state", "1 for the engine's current state.", labels=["state"]
        )
        for name in ENGINE_STATES:
            state.add_metric([name], 1 if view.engine.state == name else 0)
        yield state
        yield GaugeMetricFamily(
            PREFIX + "engine_lag_seconds",
            "How late the engine's event loop ran its last once-a-second task.",
            value=view.loop_lag,
        )
        if view.schedule_lag_p99 is not None:
            yield GaugeMetricFamily(
                PREFIX + "probe_schedule_lag_seconds",
                "99th percentile of how late recent probes started against their schedule.",
                value=view.schedule_lag_p99,
            )
        yield GaugeMetricFamily(
            PREFIX + "leader",
            "1 while this watcher holds the store lease (it probes and pages).",
            value=1 if view.leader else 0,
        )
        holder = InfoMetricFamily(
            PREFIX + "lease_holder", "Who holds the store lease, as this watcher sees it."
        )
        if view.owner:
            holder.add_metric([], {"owner": view.owner})
        yield holder

    @staticmethod
    def _endpoint_families(endpoints: tuple[EndpointSnapshot, ...]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            PREFIX + "endpoint_up",
            "1 if the endpoint answers (up or degraded), 0 if down or loading; absent while unknown.",
            labels=["endpoint"],
        )
        health = GaugeMetricFamily(
            PREFIX + "endpoint_health", "1 for the endpoint's current health.", labels=["endpoint", "health"]
        )
        version = InfoMetricFamily(
            PREFIX + "endpoint_version",
            "The model version an endpoint serves, and the one its registry alias points to.",
            labels=["endpoint"],
        )
        rps = GaugeMetricFamily(
            PREFIX + "endpoint_requests_per_second",
            "Requests per second over the last minute, from the endpoint's own metrics.",
            labels=["endpoint"],
        )
        errors = GaugeMetricFamily(
            PREFIX + "endpoint_error_ratio",
            "Share of failed requests over the last minute (of probes where no metrics are read).",
            labels=["endpoint"],
        )
        latency = GaugeMetricFamily(
            PREFIX + "endpoint_latency_seconds",
            "Latency quantiles over the last minute, as the console shows them.",
            labels=["endpoint", "quantile"],
        )
        for e in endpoints:
            if e.health != "unknown":
                up.add_metric([e.name], 1 if e.health in ("up", "degraded") else 0)
            for name in HEALTHS:
                health.add_metric([e.name, name], 1 if e.health == name else 0)
            version.add_metric(
                [e.name],
                {
                    "model": e.model or "",
                    "alias": e.alias or "",
                    "served_version": e.served_version or "",
                    "expected_version": e.expected_version or "",
                },
            )
            if e.rps is not None:
                rps.add_metric([e.name], e.rps)
            if e.error_ratio is not None:
                errors.add_metric([e.name], e.error_ratio)
            for quantile, value in (("0.5", e.p50), ("0.95", e.p95), ("0.99", e.p99)):
                if value is not None:
                    latency.add_metric([e.name, quantile], value)
        yield from (up, health, version, rps, errors, latency)

    def _counted_families(self) -> Iterator[Metric]:
        with self._lock:
            latency = {name: (list(h.counts), h.sum) for name, h in self._latency.items()}
            probes = dict(self._probes)
            heartbeats = dict(self._heartbeats)
        histogram = HistogramMetricFamily(
            PREFIX + "probe_duration_seconds",
            "Latency of the console's successful probes, per endpoint.",
            labels=["endpoint"],
        )
        for name, (counts, total) in sorted(latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*PROBE_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            histogram.add_metric([name], buckets, total)
        yield histogram
        counter = CounterMetricFamily(
            PREFIX + "probes",
            "Probes made, per endpoint and result (ok, failed).",
            labels=["endpoint", "result"],
        )
        for (name, result), count in sorted(probes.items()):
            counter.add_metric([name, result], count)
        yield counter
        beats = CounterMetricFamily(
            PREFIX + "heartbeats", "Heartbeat calls, by outcome (sent, failed).", labels=["outcome"]
        )
        for outcome, count in sorted(heartbeats.items()):
            beats.add_metric([outcome], count)
        yield beats


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlops-console")
    except PackageNotFoundError:
        return "unknown"


class MetricsServer:
    """`/metrics` on `host:port`, served by its own thread."""

    def __init__(self, metrics: SelfMetrics, host: str, port: int) -> None:
        """Listen now: OSError if the address cannot be bound (in use, not this machine's)."""
        self.server, self.thread = start_http_server(port, addr=host, registry=metrics.registry)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5.0)


async def publish_loop(metrics: SelfMetrics, engine: Engine, every: float = 1.0) -> None:
    """Hand the engine's view to the scrape thread every `every` seconds, with how late the loop was."""
    loop = asyncio.get_running_loop()
    lag = 0.0
    while True:
        metrics.update(engine, lag)
        started = loop.time()
        await asyncio.sleep(every)
        lag = max(0.0, loop.time() - started - every)
