"""Series arithmetic the alerts depend on: rates across counter resets, histogram quantiles, the
throughput baseline's warm-up and robustness, and memory that stays bounded."""

from __future__ import annotations

import math

from mlops_console.core.conditions.traffic import THROUGHPUT_WARMUP, throughput_dropped
from mlops_console.core.series import EndpointSeries, MetricsSample, histogram_quantile


def sample(at: float, requests: float, errors: float = 0.0, slow_share: float = 0.0) -> MetricsSample:
    fast = requests * (1 - slow_share)
    return MetricsSample(
        at, requests, errors, ((0.01, fast), (0.1, fast), (1.0, requests), (math.inf, requests))
    )


def test_rate_error_ratio_and_quantiles_over_a_window() -> None:
    series = EndpointSeries(interval=1.0)
    for t in range(0, 61, 5):
        series.add_metrics(sample(1000.0 + t, requests=10.0 * t, errors=1.0 * t))
    stats = series.metric_stats(1060.0, 60.0)
    assert stats.rps == 10.0
    assert abs(stats.error_ratio - 0.1) < 1e-9
    assert stats.p50 is not None and stats.p50 <= 0.01


def test_counter_reset_counts_from_zero_instead_of_going_negative() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 5000))
    series.add_metrics(sample(10.0, 50))
    stats = series.metric_stats(10.0, 60.0)
    assert stats.rps == 5.0


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == 0.1
    assert abs(histogram_quantile(0.75, buckets) - 0.15) < 1e-9
    assert histogram_quantile(0.5, [(math.inf, 0.0)]) is None


def test_throughput_drop_needs_warm_up_and_a_real_drop() -> None:
    series = EndpointSeries(interval=1.0)
    total, t = 0.0, 0.0
    while t <= THROUGHPUT_WARMUP + 120:
        rate = 20.0 + (1.0 if int(t) % 20 else -1.0)
        total += rate * 5
        series.add_metrics(sample(t, total))
        t += 5
    found = series.throughput_baseline(t)
    assert found is not None
    baseline = found.figures()
    assert abs(baseline[0] - 20.0) < 2
    assert throughput_dropped(19.0, baseline, 0.5)[0] is False, "ordinary noise is not a drop"
    dropped, amount = throughput_dropped(4.0, baseline, 0.5)
    assert dropped and amount > 0.75
    cold = (20.0, 0.5, THROUGHPUT_WARMUP - 1)
    assert throughput_dropped(0.0, cold, 0.5)[0] is False, "never page during warm-up"


def test_memory_is_bounded_whatever_the_uptime() -> None:
    series = EndpointSeries(interval=1.0)
    for t in range(86_400):
        series.add_probe(float(t), 0.01)
        series.add_metrics(sample(float(t), float(t)))
    assert len(series.probes) <= 61 and len(series.metrics) <= 62
    assert len(series.rps_history) <= 180 and len(series.latency_history) <= 60
