"""Percentiles, rates and ratios against values computed by hand.

These figures decide `latency_p95`, `error_ratio` and `throughput_drop`: an off-by-one in an index or
a window boundary pages falsely or not at all, so each is pinned to an exact number.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tests._hypothesis  # noqa: F401  (loads the profile)
from mlops_console.config import parse_settings
from mlops_console.core.conditions import Reading, quiet
from mlops_console.core.conditions.traffic import THROUGHPUT_WARMUP, throughput_dropped
from mlops_console.core.series import (
    METRICS_STEP,
    PROBE_WINDOW,
    RPS_STEP,
    EndpointSeries,
    MetricsSample,
    PointRing,
    ThroughputBaseline,
    WindowStats,
    histogram_quantile,
    median_and_mad,
    quantile,
)

TENTHS = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0


def test_quantile_interpolates_between_ranks() -> None:
    # position (n - 1) * q: 9 * 0.5 = 4.5 -> halfway between 0.5 and 0.6
    assert quantile(TENTHS, 0.5) == pytest.approx(0.55)
    assert quantile(TENTHS, 0.95) == pytest.approx(0.955)  # 9 * 0.95 = 8.55 -> 0.9 + 0.55 * 0.1
    assert quantile(TENTHS, 0.99) == pytest.approx(0.991)  # 8.91
    assert quantile(TENTHS, 0.0) == pytest.approx(0.1)
    assert quantile(TENTHS, 1.0) == pytest.approx(1.0)
    assert quantile([0.25], 0.99) == 0.25
    assert quantile([], 0.5) is None


def test_probe_window_percentiles_error_ratio_and_counts() -> None:
    series = EndpointSeries(interval=1.0)
    now = 10_000.0
    series.add_probe(now - 61, 9.0)  # outside the minute: ignored
    for i, latency in enumerate(TENTHS):
        series.add_probe(now - 50 + i, latency)
    series.add_probe(now - 5, None)
    series.add_probe(now - 4, None)
    stats = series.probe_stats(now)
    assert stats.requests == 12 and stats.samples == 10
    assert stats.error_ratio == pytest.approx(2 / 12)
    assert (stats.p50, stats.p95, stats.p99) == (
        pytest.approx(0.55),
        pytest.approx(0.955),
        pytest.approx(0.991),
    )
    assert stats.rps is None, "probes are not traffic"


def test_probe_window_includes_its_boundary() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_probe(100.0, 0.3)
    assert series.probe_stats(100.0 + PROBE_WINDOW).samples == 1
    assert series.probe_stats(100.0 + PROBE_WINDOW + 0.001).requests == 0


def test_failed_probes_only_give_a_full_error_ratio_and_no_latency() -> None:
    series = EndpointSeries(interval=1.0)
    for t in range(3):
        series.add_probe(float(t), None)
    stats = series.probe_stats(3.0)
    assert (stats.error_ratio, stats.requests, stats.samples, stats.p95) == (1.0, 3, 0, None)
    assert list(series.latency_history) == []


def test_histogram_quantile_by_hand() -> None:
    buckets = [(0.1, 100.0), (0.5, 180.0), (1.0, 200.0), (math.inf, 200.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)  # rank 100: top of the first bucket
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # rank 50: half of the first 100
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)  # rank 190: 0.5 + 0.5 * 10 / 20
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.95)  # rank 198: 0.5 + 0.5 * 18 / 20
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.3)  # rank 140: 0.1 + 0.4 * 40 / 80


def test_histogram_quantile_in_the_inf_bucket_is_the_last_finite_bound() -> None:
    assert histogram_quantile(0.95, [(0.1, 10.0), (0.2, 12.0), (math.inf, 20.0)]) == 0.2


def test_histogram_quantile_of_empty_buckets() -> None:
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    # an empty bucket in between: the rank is reached at its bound, not by dividing by zero
    assert histogram_quantile(0.5, [(0.1, 0.0), (0.2, 5.0), (0.4, 5.0), (math.inf, 10.0)]) == pytest.approx(
        0.2
    )


def sample(at: float, requests: float, errors: float, buckets: tuple[tuple[float, float], ...] = ()):  # type: ignore[no-untyped-def]
    return MetricsSample(at, requests, errors, buckets)


def test_metric_rates_ratio_and_delta_quantiles_by_hand() -> None:
    series = EndpointSeries(interval=1.0)
    old = ((0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0))
    new = ((0.1, 150.0), (0.5, 270.0), (1.0, 300.0), (math.inf, 300.0))
    series.add_metrics(sample(1000.0, 100.0, 5.0, old))
    series.add_metrics(sample(1010.0, 300.0, 15.0, new))
    stats = series.metric_stats(1010.0, 60.0)
    assert stats.rps == pytest.approx(20.0)  # 200 requests in 10 s
    assert stats.requests == 200.0
    assert stats.error_ratio == pytest.approx(0.05)  # 10 errors of 200
    # the delta histogram: (0.1, 100), (0.5, 180), (1.0, 200), (inf, 200)
    assert stats.samples == 200.0
    assert stats.p50 == pytest.approx(0.1)
    assert stats.p95 == pytest.approx(0.75)
    assert stats.p99 == pytest.approx(0.95)


def test_metric_window_starts_at_the_oldest_sample_inside_it() -> None:
    series = EndpointSeries(interval=1.0)
    for at, requests in [(0.0, 0.0), (30.0, 300.0), (70.0, 1000.0), (100.0, 1600.0)]:
        series.add_metrics(sample(at, requests, 0.0))
    stats = series.metric_stats(100.0, 60.0)
    assert stats.rps == pytest.approx(20.0)  # from t=70: 600 requests in 30 s
    assert series.metric_stats(100.0, 100.0).rps == pytest.approx(16.0)  # from t=0: 1600 in 100 s
    assert series.metric_stats(100.0, 5.0).rps == pytest.approx(20.0), "nothing inside: the one before"


def test_restarted_counters_count_from_zero_for_rates_errors_and_buckets() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 5000.0, 400.0, ((0.1, 5000.0), (math.inf, 5000.0))))
    series.add_metrics(sample(10.0, 40.0, 4.0, ((0.1, 30.0), (math.inf, 40.0))))
    stats = series.metric_stats(10.0, 60.0)
    assert stats.rps == pytest.approx(4.0) and stats.requests == 40.0
    assert stats.error_ratio == pytest.approx(0.1)
    assert stats.samples == 40.0
    assert stats.p50 == pytest.approx(0.1 * 20 / 30)  # rank 20 of 30 in [0, 0.1]


def test_no_requests_means_no_error_ratio() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 10.0, 1.0))
    series.add_metrics(sample(10.0, 10.0, 1.0))
    stats = series.metric_stats(10.0, 60.0)
    assert (stats.rps, stats.requests, stats.error_ratio) == (0.0, 0.0, None)


def test_one_sample_or_no_elapsed_time_gives_no_rate() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 10.0, 0.0))
    assert series.metric_stats(0.0, 60.0).rps is None
    series.metrics.append(sample(0.0, 20.0, 0.0))
    assert series.metric_stats(0.0, 60.0).rps is None


def test_scrapes_closer_than_a_step_replace_the_newest_sample() -> None:
    series = EndpointSeries(interval=1.0)
    for at in (0.0, METRICS_STEP, METRICS_STEP + 1):
        series.add_metrics(sample(at, 10.0 * at, 0.0))
    assert [m.at for m in series.metrics] == [0.0, METRICS_STEP, METRICS_STEP + 1]
    series.add_metrics(sample(METRICS_STEP + 2, 70.0, 0.0))  # within a step of the one before the newest
    assert [m.at for m in series.metrics] == [0.0, METRICS_STEP, METRICS_STEP + 2]
    assert series.metrics[-1].requests == 70.0
    series.add_metrics(sample(2 * METRICS_STEP, 100.0, 0.0))  # a full step after it: kept
    assert [m.at for m in series.metrics] == [0.0, METRICS_STEP, METRICS_STEP + 2, 2 * METRICS_STEP]


def test_throughput_history_keeps_one_rate_per_step() -> None:
    series = EndpointSeries(interval=1.0)
    for t in range(0, 31, 5):
        series.add_metrics(sample(float(t), 10.0 * t, 0.0))
    assert [at for at, _ in series.rps_history] == [5.0, 5.0 + RPS_STEP, 5.0 + 2 * RPS_STEP]
    assert all(rate == pytest.approx(10.0) for _, rate in series.rps_history)


def test_throughput_baseline_median_mad_and_span_by_hand() -> None:
    series = EndpointSeries(interval=1.0)
    series.rps_history.extend([(0.0, 10.0), (10.0, 12.0), (20.0, 11.0), (30.0, 30.0), (100.0, 1.0)])
    median, mad, span = series.throughput_baseline(120.0).figures()  # type: ignore[union-attr]
    # the last minute (t=100) is left out: median of 10, 11, 12, 30 = 11.5; deviations 1.5, 0.5, 0.5, 18.5
    assert (median, mad, span) == (pytest.approx(11.5), pytest.approx(1.0), 120.0)
    assert series.throughput_baseline(120.0, exclude_recent=100.0) is None, "fewer than 3 rates"


def test_a_throughput_baseline_takes_its_median_only_when_a_drop_is_possible() -> None:
    baseline = ThroughputBaseline((10.0, 12.0, 11.0, 30.0), 600.0)
    # Above half of the highest rate (30) nothing below the median can be a 50 % drop; at or under
    # it, only the median can tell; a share outside 0.01-1 is never taken as an answer.
    assert baseline.clearly_above(15.1, 0.5) and not baseline.clearly_above(15.0, 0.5)
    assert not baseline.clearly_above(15.0 * (1 + 1e-10), 0.5), "within rounding of the boundary"
    assert baseline.clearly_above(3.1, 0.1) and not baseline.clearly_above(3.0, 0.1)
    assert not baseline.clearly_above(1e9, 0.005) and not baseline.clearly_above(1e9, 1.5)
    assert baseline._figures is None, "no median taken yet"
    assert baseline.figures() == (11.5, 1.0, 600.0)
    # The engine's round: a rate a little under the usual leaves the median untaken, a drop does not.
    settings = parse_settings({"endpoints": [{"name": "a", "url": "http://127.0.0.1:9"}]})
    usual = Reading(
        endpoint="a", model=None, now=0.0, interval=1.0, health="up", probes=1, consecutive_failures=0,
        consecutive_invalid=0, last_error=None, served_version=None, expected_version=None, alias=None,
        window=WindowStats(), window_source="metrics", traffic_measured=True, rps=16.0,
        throughput_baseline=ThroughputBaseline((10.0, 12.0, 11.0, 30.0), 600.0),
    )  # fmt: skip
    assert quiet(settings, usual) and usual.throughput_baseline._figures is None  # type: ignore[union-attr]
    dropped = replace(usual, rps=5.0, throughput_baseline=ThroughputBaseline((10.0, 12.0, 11.0, 30.0), 600.0))
    assert not quiet(settings, dropped) and dropped.throughput_baseline._figures is not None  # type: ignore[union-attr]


def test_throughput_drop_by_hand() -> None:
    baseline = (20.0, 1.0, THROUGHPUT_WARMUP)
    dropped, amount = throughput_dropped(10.0, baseline, 0.5)
    assert dropped and amount == pytest.approx(0.5), "exactly the threshold is a drop"
    dropped, amount = throughput_dropped(10.1, baseline, 0.5)
    assert not dropped and amount == pytest.approx(0.495)
    # a drop inside the noise band (3 x 1.4826 x MAD) is not one, however large the share
    noisy = (2.0, 1.0, THROUGHPUT_WARMUP)
    assert throughput_dropped(0.0, noisy, 0.5)[0] is False
    assert throughput_dropped(0.0, (20.0, 0.0, THROUGHPUT_WARMUP - 0.1), 0.5) == (False, None)
    assert throughput_dropped(0.0, (0.2, 0.0, THROUGHPUT_WARMUP), 0.5) == (False, None)
    assert throughput_dropped(None, baseline, 0.5) == (False, None)


def test_edges_of_small_windows_by_hand() -> None:
    # One observation is a histogram too: its quantile is inside its bucket.
    assert histogram_quantile(0.5, [(0.1, 0.0), (0.5, 1.0), (math.inf, 1.0)]) == pytest.approx(0.3)
    # Half a second between scrapes still gives rates; one request gives a ratio; equal error counters
    # mean no new errors.
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(1000.0, 10.0, 3.0))
    series.add_metrics(sample(1000.5, 11.0, 3.0))
    stats = series.metric_stats(1000.5, 60.0)
    assert (stats.rps, stats.requests, stats.error_ratio) == (pytest.approx(2.0), 1.0, 0.0)
    # Exactly three rates before the last minute make a baseline, its span counted from the first.
    history = EndpointSeries(interval=1.0)
    history.rps_history.extend([(500.0, 10.0), (510.0, 10.0), (520.0, 10.0)])
    assert history.throughput_baseline(600.0).figures() == (10.0, 0.0, 100.0)  # type: ignore[union-attr]
    # Counters that did not move are no restart: the histogram of the window is empty.
    restarted = EndpointSeries(interval=1.0)
    restarted.add_metrics(sample(1000.0, 100.0, 10.0, ((1.0, 100.0), (math.inf, 100.0))))
    restarted.add_metrics(sample(1010.0, 100.0, 10.0, ((1.0, 100.0), (math.inf, 100.0))))
    same = restarted.metric_stats(1010.0, 60.0)
    assert (same.requests, same.samples, same.buckets) == (0.0, 0.0, ((1.0, 0.0), (math.inf, 0.0)))


def test_share_slower_than_a_target_from_a_histogram_by_hand() -> None:
    # 10 observations: 4 up to 0.1 s, 4 more up to 0.5 s, 2 slower than 0.5 s.
    stats = WindowStats(buckets=((0.1, 4.0), (0.5, 8.0), (math.inf, 10.0)))
    assert stats.slower_than(0.05) == (pytest.approx(0.8), 10.0)  # half of the first 4 are faster
    assert stats.slower_than(0.1) == (pytest.approx(0.6), 10.0)  # exactly a bound: its whole bucket
    assert stats.slower_than(0.3) == (pytest.approx(0.4), 10.0)  # 4 + 4 * 0.2 / 0.4 = 6 faster
    assert stats.slower_than(2.0) == (pytest.approx(0.2), 10.0)  # past the last bound: the +Inf bucket
    # Without a +Inf bucket, past the last bound nothing is slower.
    assert WindowStats(buckets=((0.1, 4.0), (0.5, 8.0))).slower_than(2.0) == (0.0, 8.0)
    # Less than one observation slower (interpolated) stays less than one.
    nearly = WindowStats(buckets=((0.1, 9.0), (0.5, 10.0), (math.inf, 10.0)))
    assert nearly.slower_than(0.3) == (pytest.approx(0.05), 10.0)  # 9 + 1 * 0.5 faster


def test_share_slower_than_a_target_at_the_edges_of_a_histogram() -> None:
    # Every observation past the last finite bound: all slower, whatever the empty buckets before.
    slow = WindowStats(buckets=((0.1, 0.0), (0.5, 0.0), (math.inf, 3.0)))
    assert slow.slower_than(0.2) == (1.0, 3.0)
    # One observation, inside the second bucket: half of it is slower than the middle of that bucket.
    one = WindowStats(buckets=((0.1, 0.0), (0.5, 1.0), (math.inf, 1.0)))
    assert one.slower_than(0.3) == (pytest.approx(0.5), 1.0)
    # A histogram without observations says nothing (no division by zero).
    assert WindowStats(buckets=((0.1, 0.0), (math.inf, 0.0))).slower_than(0.2) is None


def test_probe_window_judges_slower_than_from_its_successful_probes() -> None:
    series = EndpointSeries(interval=1.0)
    for at, latency in [(1.0, 0.4), (2.0, 0.1), (3.0, None), (4.0, 0.3), (5.0, 0.2)]:
        series.add_probe(at, latency)
    assert list(series.latency_history) == [0.4, 0.1, 0.3, 0.2], "the sparkline: successes, in order"
    stats = series.probe_stats(5.0)
    assert stats.latencies == (0.1, 0.2, 0.3, 0.4)
    assert stats.slower_than(0.2) == (0.5, 4.0), "0.3 and 0.4 of four; the failed probe is no latency"
    assert stats.slower_than(0.05) == (1.0, 4.0)


@pytest.mark.parametrize(
    ("interval", "kept"),
    [(1.0, 61), (2.0, 31), (7.0, 10), (30.0, 3), (60.0, 2), (600.0, 2), (0.1, 600), (0.01, 600)],
)
def test_probe_ring_holds_one_window_of_probes_at_least_two_at_most_600(interval: float, kept: int) -> None:
    # ceil(60 s / interval) + 1 probes cover the window; the bounds keep memory fixed per endpoint.
    series = EndpointSeries(interval=interval)
    for i in range(1000):
        series.add_probe(i * interval, 0.1)
    assert len(series.probes) == kept
    assert series.probes[-1][0] == 999 * interval, "the newest are the ones kept"


def test_one_second_scrapes_keep_a_sample_every_few_seconds() -> None:
    # The newest sample is replaced until it is a full step after the one before it.
    series = EndpointSeries(interval=1.0)
    for t in range(14):
        series.add_metrics(sample(float(t), 10.0 * t, 0.0))
    assert [m.at for m in series.metrics] == [0.0, 4.0, 8.0, 12.0, 13.0]
    assert series.metric_stats(13.0, 60.0).rps == pytest.approx(10.0)


def test_throughput_history_rates_cover_the_last_minute_only() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 0.0, 0.0))
    series.add_metrics(sample(30.0, 300.0, 0.0))
    series.add_metrics(sample(60.5, 1200.0, 0.0))  # 60.5 s after the first: outside the minute
    assert list(series.rps_history) == [(30.0, pytest.approx(10.0)), (60.5, pytest.approx(900 / 30.5))]


def test_metric_window_spans_several_samples_of_an_uneven_rate() -> None:
    series = EndpointSeries(interval=1.0)
    for at, requests in [(100.0, 0.0), (105.0, 100.0), (110.0, 300.0)]:
        series.add_metrics(sample(at, requests, 0.0))
    assert series.metric_stats(110.0, 60.0).rps == pytest.approx(30.0), "300 in 10 s, from the oldest"
    # Nothing inside the window but the newest: the sample just before it.
    later = EndpointSeries(interval=1.0)
    for at, requests in [(0.0, 0.0), (10.0, 10.0), (20.0, 20.0), (30.0, 30.0), (40.0, 100.0)]:
        later.add_metrics(sample(at, requests, 0.0))
    assert later.metric_stats(40.0, 5.0).rps == pytest.approx(7.0)  # 70 requests in 10 s


def test_histogram_buckets_the_older_scrape_lacked_count_from_zero() -> None:
    # The first scrape had no histogram yet (or fewer buckets): its counts are zero, not unknown.
    series = EndpointSeries(interval=1.0)
    series.add_metrics(sample(0.0, 100.0, 0.0, ((0.1, 0.0),)))
    series.add_metrics(sample(10.0, 110.0, 0.0, ((0.1, 4.0), (0.5, 10.0), (math.inf, 10.0))))
    stats = series.metric_stats(10.0, 60.0)
    assert stats.buckets == ((0.1, 4.0), (0.5, 10.0), (math.inf, 10.0))
    assert stats.samples == 10.0
    assert stats.p50 == pytest.approx(0.1 + 0.4 * 1 / 6)  # rank 5: 1 of the 6 in (0.1, 0.5]


def test_throughput_baseline_leaves_out_exactly_the_last_minute_by_default() -> None:
    series = EndpointSeries(interval=1.0)
    series.rps_history.extend([(0.0, 10.0), (10.0, 10.0), (20.0, 12.0), (39.5, 50.0), (41.0, 99.0)])
    # at 100: 39.5 is 60.5 s old (kept), 41 is 59 s old (left out); median 11, deviations 1, 1, 1, 39
    assert series.throughput_baseline(100.0).figures() == (11.0, 1.0, 100.0)  # type: ignore[union-attr]


def test_a_full_ring_keeps_the_newest_points_paired_with_their_times() -> None:
    """The throughput history: its oldest kept point dates the baseline's span, its newest values draw
    the status sparkline."""
    ring = PointRing(3)
    for i in range(5):
        ring.append((float(i), 10.0 * i))
    assert list(ring) == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert (ring[0], ring[-1], len(ring)) == ((2.0, 20.0), (4.0, 40.0), 3)
    assert (ring.values(), ring.values(2)) == ((20.0, 30.0, 40.0), (30.0, 40.0))
    ring.extend([(5.0, 50.0)])  # one past the bound
    assert list(ring) == [(3.0, 30.0), (4.0, 40.0), (5.0, 50.0)]
    ring.extend([(6.0, 60.0), (7.0, 70.0), (8.0, 80.0), (9.0, 90.0)])
    assert list(ring) == [(7.0, 70.0), (8.0, 80.0), (9.0, 90.0)]
    ring.clear()
    ring.extend([(1.0, 1.0), (2.0, 2.0)])
    assert list(ring) == [(1.0, 1.0), (2.0, 2.0)]


def test_points_older_than_an_age_are_those_each_judged_alone_in_order_or_not() -> None:
    """The throughput baseline's history: the values of exactly the points more than `age` before `now`
    (the subtraction rounds: 0.3 - 0.1 is not 0.2), by bisection while the times are in order, and the
    same after a clock stepped back put a point out of order."""
    times = [0.0, 0.1, 0.2, 0.3, 0.30000000000000004, 1.0, 5.0]
    ring = PointRing(10)
    ring.extend((t, t * 10) for t in times)
    for now, age in [(0.3, 0.2), (0.3, 0.1), (0.5, 0.2), (1.2, 0.2), (5.0, 0.0), (9.0, 1.0), (0.0, 0.0)]:
        expected = [t * 10 for t in times if now - t > age]
        assert list(ring.values_older_than(now, age)) == expected, (now, age)
    # Where bisection on `now - age` alone would keep one too few, or one too many.
    for points, now, age, kept in [([0.5, 1.0, 1.05], 1.1, 0.1, [5.0, 10.0]), ([-5e-324, 0.1], 0.7, 0.7, [])]:
        edge = PointRing(5)
        edge.extend((t, t * 10) for t in points)
        assert list(edge.values_older_than(now, age)) == kept
    ring.append((0.2, 2.0))  # a clock stepped back
    ring.append((6.0, 60.0))
    assert list(ring.values_older_than(5.5, 0.5)) == [0.0, 1.0, 2.0, 3.0, 3.0000000000000004, 10.0, 2.0]
    ring.clear()  # in order again
    ring.extend([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
    assert list(ring.values_older_than(3.0, 1.0)) == [1.0]
    # Extended out of order (a round's point, then an older history slice after it) as well.
    ring.extend([(9.0, 9.0), (4.0, 4.0), (10.0, 10.0)])
    assert list(ring.values_older_than(8.0, 2.0)) == [1.0, 2.0, 3.0, 4.0]


# Rates as a fleet's are: many equal (an idle endpoint's zeros, a steady one's), some apart.
_RATES = st.lists(
    st.one_of(st.sampled_from([0.0, 1.0, 1 / 3, 2.5, 10.0, 1e-300]), st.floats(-1e6, 1e6)),
    min_size=1,
    max_size=40,
)


@given(_RATES)
@example([1.0, 2.0, 3.0, 4.0])  # even: both middles, of the values and of the deviations
@example([5.0, 5.0, 5.0])  # every deviation zero
@example([0.0, 0.0, 100.0, 100.0, 100.0])  # deviations all on one side but one
@example([1.0, 2.0, float("nan")])
@example([1.0, float("inf"), 3.0, float("-inf")])
def test_the_baselines_median_and_mad_are_statistics_own(rates: list[float]) -> None:
    """The throughput baseline's median and median absolute deviation: the very floats
    `statistics.median` gives (a drop is judged against them), NaN and infinities included."""
    median = statistics.median(rates)
    mad = statistics.median([abs(r - median) for r in sorted(rates)])
    got = median_and_mad(rates)
    assert [math.isnan(x) for x in got] == [math.isnan(median), math.isnan(mad)]
    assert [x for x in got if not math.isnan(x)] == [x for x in (median, mad) if not math.isnan(x)]
