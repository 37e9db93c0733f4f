"""The probes of the current minute, and the store's rollup of that minute (`EndpointState.rollup`)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from mlops_console.core.adapters import ProbeResult
from mlops_console.core.series import WindowStats, quantile
from mlops_console.core.store import Rollup


@dataclass
class ProbeMinute:
    """Probe results of the current minute, for the store's rollups."""

    minute: int = 0
    latencies: list[float] = field(default_factory=list)
    """Sorted as they come (the rollup is taken every few seconds, a probe adds one)."""
    failures: int = 0

    def add(self, result: ProbeResult, now: float) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.latencies, self.failures = minute, [], 0
        if result.ok and result.latency is not None:
            if result.latency == result.latency:  # NaN sorts nowhere: it was never a timing either
                bisect.insort(self.latencies, result.latency)
        elif not result.ok:
            self.failures += 1

    def rollup(
        self, endpoint: str, stats: WindowStats, rps: float | None, *, traffic_quantiles: bool
    ) -> Rollup | None:
        """This minute so far (None before the first probe): the probes' latencies, or with
        `traffic_quantiles` the window's quantiles of real traffic; throughput and errors of the window."""
        if not self.minute:
            return None
        latencies = self.latencies
        quantiles = (
            (stats.p50, stats.p95, stats.p99)
            if traffic_quantiles
            else (quantile(latencies, 0.5), quantile(latencies, 0.95), quantile(latencies, 0.99))
        )
        return Rollup(
            endpoint=endpoint,
            minute=self.minute,
            probes=len(latencies) + self.failures,
            failures=self.failures,
            p50=quantiles[0],
            p95=quantiles[1],
            p99=quantiles[2],
            rps=rps,
            error_ratio=stats.error_ratio,
            samples=len(latencies),
            latency_mean=sum(latencies) / len(latencies) if latencies else None,
            latency_min=latencies[0] if latencies else None,
            latency_max=latencies[-1] if latencies else None,
            requests=stats.requests,
        )
