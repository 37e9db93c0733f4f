"""The probe window's figures, kept up to date as probes come and go, against their definition: the
probes still held (the last `maxlen`) and no older than `PROBE_WINDOW`, latencies sorted by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tests._hypothesis  # noqa: F401  (loads the profile)
from mlops_console.core.series import PROBE_WINDOW, EndpointSeries, WindowStats, quantile

LATENCIES = st.one_of(
    st.none(),
    st.floats(min_value=0.0, max_value=5.0),
    st.sampled_from([0.1, 0.2, 0.2, 0.5]),  # repeated values: one of two equal ones leaves
)
FORWARD, BACK = st.floats(min_value=0.0, max_value=25.0), st.floats(min_value=-100.0, max_value=0.0)
STEPS = st.lists(st.tuples(FORWARD | FORWARD | BACK, LATENCIES), min_size=1, max_size=120)


def defined(series: EndpointSeries, held: list[tuple[float, float | None]], now: float) -> WindowStats:
    recent = [(at, latency) for at, latency in held if now - at <= PROBE_WINDOW]
    if not recent:
        return WindowStats()
    latencies = sorted(latency for _, latency in recent if latency is not None)
    failed = len(recent) - len(latencies)
    return WindowStats(
        error_ratio=failed / len(recent),
        requests=len(recent),
        p50=quantile(latencies, 0.5),
        p95=quantile(latencies, 0.95),
        p99=quantile(latencies, 0.99),
        samples=len(latencies),
        latencies=tuple(latencies),
    )


def same(a: WindowStats, b: WindowStats) -> bool:
    def eq(x: object, y: object) -> bool:
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y

    fields = ("error_ratio", "requests", "p50", "p95", "p99", "samples")
    return all(eq(getattr(a, f), getattr(b, f)) for f in fields) and len(a.latencies) == len(b.latencies)


@given(interval=st.sampled_from([1.0, 10.0, 30.0]), steps=STEPS, ahead=st.floats(min_value=-5, max_value=90))
def test_the_kept_window_equals_its_definition(
    interval: float, steps: list[tuple[float, float | None]], ahead: float
) -> None:
    """Mostly in time order (a step back now and then, as a wall clock set back may take), with failures and
    repeated latencies; asked after every probe, and once more later (as `status` does)."""
    series = EndpointSeries(interval=interval)
    maxlen = series.probes.maxlen
    assert maxlen is not None
    held: list[tuple[float, float | None]] = []
    at = 1_000.0
    for step, latency in steps:
        at += step
        series.add_probe(at, latency)
        held = [*held, (at, latency)][-maxlen:]
        assert same(series.probe_stats(at), defined(series, held, at))
    later = at + ahead
    assert same(series.probe_stats(later), defined(series, held, later))


def test_a_nan_latency_is_counted_as_the_scan_counts_it_and_leaves_with_its_probe() -> None:
    series = EndpointSeries(interval=10.0)  # holds 7 probes
    series.add_probe(0.0, float("nan"))
    for t in range(1, 7):
        series.add_probe(float(t), 0.1 * t)
    assert series.probe_stats(6.0).samples == 7
    series.add_probe(7.0, 0.7)  # the NaN leaves
    stats = series.probe_stats(7.0)
    assert stats.samples == 7 and stats.p50 == 0.4 and not math.isnan(stats.p99 or 0.0)


def test_probes_out_of_the_window_leave_the_figures_in_order() -> None:
    series = EndpointSeries(interval=1.0)
    for t, latency in ((0.0, 0.9), (1.0, None), (30.0, 0.1), (59.0, 0.3)):
        series.add_probe(t, latency)
    assert (series.probe_stats(60.0).requests, series.probe_stats(60.0).p50) == (4, 0.3)
    assert series.probe_stats(60.5).latencies == (0.1, 0.3), "the probe at 0 s is out"
    stats = series.probe_stats(61.5)
    assert (stats.requests, stats.error_ratio, stats.latencies) == (2, 0.0, (0.1, 0.3))
    assert series.probe_stats(200.0).requests == 0


def test_a_failed_probe_leaving_a_full_ring_leaves_the_error_ratio() -> None:
    series = EndpointSeries(interval=30.0)  # holds 3 probes
    series.add_probe(0.0, None)
    for t in (1.0, 2.0):
        series.add_probe(t, 0.1 * t)
    assert (series.probe_stats(2.0).requests, series.probe_stats(2.0).error_ratio) == (3, 1 / 3)
    series.add_probe(3.0, 0.3)  # the failed probe leaves
    stats = series.probe_stats(3.0)
    assert (stats.requests, stats.error_ratio, stats.latencies) == (3, 0.0, (0.1, 0.2, 0.3))
    for t, latency in ((4.0, None), (5.0, 0.5), (6.0, 0.6)):
        series.add_probe(t, latency)
    assert (series.probe_stats(6.0).error_ratio, series.probe_stats(6.0).samples) == (1 / 3, 2)
    series.add_probe(7.0, 0.7)  # the second failed probe leaves too
    assert (series.probe_stats(7.0).error_ratio, series.probe_stats(7.0).samples) == (0.0, 3)


def test_probes_out_of_time_order_include_the_window_boundary() -> None:
    series = EndpointSeries(interval=1.0)
    series.add_probe(10.0, 0.1)
    series.add_probe(5.0, 0.2)  # a clock set back: out of time order
    assert series.probe_stats(5.0 + PROBE_WINDOW).latencies == (0.1, 0.2), "exactly a window old is in"
    assert series.probe_stats(5.001 + PROBE_WINDOW).latencies == (0.1,)


NAN = float("nan")


@pytest.mark.parametrize(
    ("probes", "now"),
    [
        ([(100.0, 0.1), (50.0, 0.2), (101.0, 0.3), (40.0, 0.4)], 110.0),  # a step back leaves, another comes
        ([(100.0, 0.1), (100.0, 0.2), (101.0, 0.3), (40.0, 0.4)], 110.0),  # one instant twice, then back
        ([(100.0, 0.1), (50.0, 0.2), (40.0, 0.3), (101.0, 0.4)], 105.0),  # two steps back, one leaves
        ([(100.0, 0.1), (50.0, 0.2), (101.0, NAN)], 151.0),  # a step back, then a NaN
        ([(1.0, NAN), (2.0, NAN), (3.0, 0.3), (4.0, 0.4)], 4.0),  # two NaNs, one leaves
        ([(100.0, NAN), (50.0, 0.2)], 155.0),  # a NaN, then a step back
    ],
    ids=["back-leaves", "same-instant", "back-twice", "back-then-nan", "two-nans", "nan-then-back"],
)
def test_a_ring_of_probes_out_of_time_order_or_nan_keeps_the_window_exact(
    probes: list[tuple[float, float]], now: float
) -> None:
    """Each case holds an irregularity the kept window must still see (else its shortcut counts a probe
    out of the window, or leaves a NaN out)."""
    series = EndpointSeries(interval=30.0)  # holds 3 probes
    for at, latency in probes:
        series.add_probe(at, latency)
    held: list[tuple[float, float | None]] = list(probes[-3:])
    assert same(series.probe_stats(now), defined(series, held, now))
