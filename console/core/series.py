"""Bounded per-endpoint series: probe latencies, scraped counters and histograms, throughput history.

Everything lives in fixed-size rings, so memory depends on the number of endpoints, never on uptime.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_console.core.rings import PointRing

PROBE_WINDOW = 60.0
"""Seconds of probe latencies behind the probe-based percentiles."""
METRICS_STEP = 5.0
"""Seconds between kept metric samples (scrapes in between only refresh the newest)."""
METRICS_KEEP = 300.0
RPS_STEP = 10.0
RPS_KEEP = 1800.0
HISTORY_POINTS = 60


def median_and_mad(values: Sequence[float]) -> tuple[float, float]:
    """`statistics.median` of `values` and of their absolute deviations from it, the same floats, with
    one sort in C and a few bisection steps instead of a second sort of a list built value by value
    (every endpoint's throughput baseline is taken every round, of up to 180 rates)."""
    ordered = sorted(values)
    total = sum(ordered)
    if total - total != 0.0:  # a NaN or an infinity (or a sum past the largest double): as statistics does it
        median = statistics.median(ordered)
        return median, statistics.median([abs(v - median) for v in ordered])
    n, half = len(ordered), len(ordered) // 2
    median = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
    split = bisect.bisect_left(ordered, median)
    below, above = split, n - split

    def nearest(k: int) -> float:
        # The k-th smallest deviation (from 0): of those below the median, nearest first (`median - v`,
        # the exact negation of `v - median`), merged with those at or above it (`v - median`).
        lo, hi = max(0, k + 1 - above), min(k + 1, below)
        while lo < hi:
            i = (lo + hi) // 2
            if median - ordered[split - 1 - i] < ordered[split + k - i] - median:
                lo = i + 1
            else:
                hi = i
        j = k + 1 - lo
        left = median - ordered[split - lo] if lo else -math.inf
        right = ordered[split + j - 1] - median if j else -math.inf
        return max(left, right)

    mad = nearest(half) if n % 2 else (nearest(half - 1) + nearest(half)) / 2
    return median, mad


def quantile(sorted_values: list[float], q: float) -> float | None:
    """Linear-interpolated quantile of already sorted values."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


@dataclass
class MetricsSample:
    """One scrape, reduced to what the console needs (summed over the matching label sets)."""

    at: float
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...] = ()
    """Cumulative histogram buckets as (upper bound, count), sorted, +Inf last."""


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


@dataclass
class WindowStats:
    rps: float | None = None
    error_ratio: float | None = None
    requests: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    samples: float = 0.0
    """Latency observations behind p50/p95/p99 (probes, or requests in the histogram delta)."""
    latencies: tuple[float, ...] = ()
    """The successful probes' latencies, sorted (probe windows)."""
    buckets: tuple[tuple[float, float], ...] = ()
    """The latency histogram's cumulative buckets over the window (metrics windows)."""

    def slower_than(self, target: float) -> tuple[float, float] | None:
        """(share of the window's latency observations above `target` seconds, observations), or None
        without any. From a histogram the share inside the bucket holding the target is interpolated
        linearly (as `histogram_quantile` does); past the last finite bound everything counts as slower."""
        if self.buckets and self.buckets[-1][1] > 0:
            total = self.buckets[-1][1]
            lower_bound, lower_count = 0.0, 0.0
            faster = 0.0
            for bound, count in self.buckets:
                if math.isinf(bound):
                    faster = lower_count
                    break
                if target <= bound:
                    share = (target - lower_bound) / (bound - lower_bound)
                    faster = lower_count + (count - lower_count) * share
                    break
                lower_bound, lower_count = bound, count
            else:
                faster = lower_count
            return max(0.0, total - faster) / total, total
        if self.latencies:
            slow = len(self.latencies) - bisect.bisect_right(self.latencies, target)
            return slow / len(self.latencies), float(len(self.latencies))
        return None


def _probe_window(latencies: list[float], requests: int, failed: int) -> WindowStats:
    """The window's figures from its successful probes' latencies (sorted) and its failed count."""
    return WindowStats(
        error_ratio=failed / requests,
        requests=requests,
        p50=quantile(latencies, 0.5),
        p95=quantile(latencies, 0.95),
        p99=quantile(latencies, 0.99),
        samples=len(latencies),
        latencies=tuple(latencies),
    )


class EndpointSeries:
    """One endpoint's rings. The probe and scrape rings are made on first use: an endpoint read from
    Prometheus never probes nor scrapes, and at 10,000 endpoints their empty deques took 30 MB."""

    __slots__ = ("_failed", "_irregular", "_latency_history", "_metrics", "_probes", "_sorted", "interval",
                 "rps_history")  # fmt: skip

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.rps_history: PointRing[float] = PointRing(int(RPS_KEEP / RPS_STEP))
        self._probes: deque[tuple[float, float | None]] | None = None
        self._metrics: deque[MetricsSample] | None = None
        self._latency_history: deque[float] | None = None
        # Kept as probes come and go, so the window's figures need no sort per probe: the latencies of
        # the successful probes in `probes`, sorted; the failed ones; and what forbids the shortcut
        # (adjacent probes out of time order, NaN latencies), which then takes the full scan.
        self._sorted: list[float] = []
        self._failed = 0
        self._irregular = 0

    @property
    def probes(self) -> deque[tuple[float, float | None]]:
        """(time, latency or None for a failed probe)."""
        if self._probes is None:
            self._probes = deque(maxlen=max(2, min(600, math.ceil(PROBE_WINDOW / self.interval) + 1)))
        return self._probes

    @property
    def metrics(self) -> deque[MetricsSample]:
        if self._metrics is None:
            self._metrics = deque(maxlen=int(METRICS_KEEP / METRICS_STEP) + 2)
        return self._metrics

    @property
    def latency_history(self) -> deque[float]:
        if self._latency_history is None:
            self._latency_history = deque(maxlen=HISTORY_POINTS)
        return self._latency_history

    def latencies(self) -> tuple[float, ...]:
        """The recent probe latencies, oldest first (for sparklines), without making the ring."""
        return () if self._latency_history is None else tuple(self._latency_history)

    # -- probes --------------------------------------------------------------------------------------
    def add_probe(self, at: float, latency: float | None) -> None:
        probes = self.probes
        if len(probes) == probes.maxlen:  # the oldest leaves with this append
            gone_at, gone = probes[0]
            self._forget(gone)
            if gone_at > probes[1][0]:
                self._irregular -= 1
        if probes and probes[-1][0] > at:
            self._irregular += 1
        probes.append((at, latency))
        if latency is None:
            self._failed += 1
            return
        if latency != latency:  # NaN sorts nowhere
            self._irregular += 1
        else:
            bisect.insort(self._sorted, latency)
        # Rounded to the microsecond (far below what a probe's timing means): the sparkline's 60 values
        # go into the status row's JSON every 2 s, and 17-digit floats took 70 % of encoding it.
        self.latency_history.append(round(latency, 6))

    def _forget(self, latency: float | None) -> None:
        if latency is None:
            self._failed -= 1
        elif latency != latency:
            self._irregular -= 1
        else:
            del self._sorted[bisect.bisect_left(self._sorted, latency)]

    def probe_stats(self, now: float) -> WindowStats:
        if self._irregular:
            return self._scan_probe_stats(now)
        probes = self.probes
        # In time order, the probes outside the window lead: drop them from copies of the counts.
        stale = 0
        for at, _ in probes:
            if now - at <= PROBE_WINDOW:
                break
            stale += 1
        count = len(probes) - stale
        if not count:
            return WindowStats()
        latencies, failed = self._sorted, self._failed
        if stale:
            latencies = latencies.copy()
            for index in range(stale):
                latency = probes[index][1]
                if latency is None:
                    failed -= 1
                else:
                    del latencies[bisect.bisect_left(latencies, latency)]
        return _probe_window(latencies, count, failed)

    def _scan_probe_stats(self, now: float) -> WindowStats:
        recent = [p for p in self.probes if now - p[0] <= PROBE_WINDOW]
        if not recent:
            return WindowStats()
        latencies = sorted(lat for _, lat in recent if lat is not None)
        return _probe_window(latencies, len(recent), len(recent) - len(latencies))

    # -- scraped metrics -----------------------------------------------------------------------------
    def add_metrics(self, sample: MetricsSample) -> None:
        # Keep one sample per METRICS_STEP so a 1 s scrape interval does not multiply memory.
        if len(self.metrics) >= 2 and sample.at - self.metrics[-2].at < METRICS_STEP:
            self.metrics[-1] = sample
        else:
            self.metrics.append(sample)
        if not self.rps_history or sample.at - self.rps_history[-1][0] >= RPS_STEP:
            rate = self.metric_stats(sample.at, 60.0).rps
            if rate is not None:
                self.rps_history.append((sample.at, rate))

    def metric_stats(self, now: float, window: float) -> WindowStats:
        """Rates and quantiles from the newest sample back to the oldest one inside `window`."""
        if len(self.metrics) < 2:
            return WindowStats()
        newest = self.metrics[-1]
        oldest = next((m for m in self.metrics if newest.at - m.at <= window and m is not newest), None)
        if oldest is None:
            oldest = self.metrics[-2]
        elapsed = newest.at - oldest.at
        if elapsed <= 0:
            return WindowStats()
        # A counter that went down means the process restarted: count from zero.
        requests = (
            newest.requests - oldest.requests if newest.requests >= oldest.requests else newest.requests
        )
        errors = newest.errors - oldest.errors if newest.errors >= oldest.errors else newest.errors
        stats = WindowStats(rps=requests / elapsed, requests=requests)
        stats.error_ratio = errors / requests if requests > 0 else None
        if newest.buckets:
            old = dict(oldest.buckets)
            restarted = newest.requests < oldest.requests
            delta = [
                (bound, count - (0.0 if restarted else old.get(bound, 0.0)))
                for bound, count in newest.buckets
            ]
            stats.p50 = histogram_quantile(0.5, delta)
            stats.p95 = histogram_quantile(0.95, delta)
            stats.p99 = histogram_quantile(0.99, delta)
            stats.samples = delta[-1][1] if delta else 0.0
            stats.buckets = tuple(delta)
        return stats

    def throughput_baseline(self, now: float, exclude_recent: float = 60.0) -> ThroughputBaseline | None:
        """The throughput rates before the last `exclude_recent` seconds (None: fewer than 3)."""
        if len(self.rps_history) < 3:  # asked on every probe; most probed endpoints keep no rates
            return None
        history = self.rps_history.values_older_than(now, exclude_recent)
        if len(history) < 3:
            return None
        return ThroughputBaseline(history, now - self.rps_history[0][0])


class ThroughputBaseline:
    """An endpoint's throughput rates before the last minute and the seconds of history behind them:
    what a drop is judged against. Their median and MAD are taken when first asked for (`figures`):
    every endpoint's reading holds one every round, and most rounds only ask whether the current rate
    is clearly above a share of the highest rate (`clearly_above`), which no median can contradict."""

    __slots__ = ("_figures", "_rates", "span")

    def __init__(self, rates: Sequence[float], span: float) -> None:
        self._rates = rates  # a copy no one else holds: never changed after this
        self.span = span
        self._figures: tuple[float, float, float] | None = None

    def figures(self) -> tuple[float, float, float]:
        """(median, MAD, seconds of history)."""
        if self._figures is None:
            median, mad = median_and_mad(self._rates)
            self._figures = (median, mad, self.span)
        return self._figures

    def __repr__(self) -> str:  # a reading in a test's failure message
        return f"ThroughputBaseline({list(self._rates)!r}, span={self.span!r})"

    def clearly_above(self, rps: float, share: float) -> bool:
        """`rps` is above `share` of the median, by more than any rounding of the division that judges
        a drop (`share` 0.01 to 1): the median is at most the highest rate."""
        return 0.01 <= share <= 1.0 and rps > max(self._rates) * share * (1.0 + 1e-9)
