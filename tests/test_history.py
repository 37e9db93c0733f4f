"""Downsampled history: per-minute rollups with count, mean, min and max, merged for day and week views,
pruned by `store.history`; and the endpoint screen's hour/day/week views with the expected band."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_console.config import EndpointSettings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.store import Rollup, Store
from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from tests import sample
from tests._serve_helpers import poll_until
from tests._tui import prometheus_console, settle

MINUTE = 29_000_040  # a minute number divisible by 10 and 60


def rollup(minute: int, **values: object) -> Rollup:
    base = dict(
        endpoint="api",
        minute=minute,
        probes=12,
        failures=0,
        p50=0.01,
        p95=0.02,
        p99=0.03,
        rps=5.0,
        error_ratio=0.0,
        samples=12,
        latency_mean=0.012,
        latency_min=0.005,
        latency_max=0.04,
        requests=300.0,
    )
    return Rollup(**{**base, **values})  # type: ignore[arg-type]


def test_a_minute_keeps_count_mean_min_and_max_of_its_probes() -> None:
    state = EndpointState(EndpointSettings(name="api", url="http://127.0.0.1:9", adapter="generic"))
    at = MINUTE * 60.0
    for i, latency in enumerate((0.010, 0.030, 0.020)):
        state.record(ProbeResult(ok=True, latency=latency), at + i)
        state.refresh(at + i)
    state.record(ProbeResult(ok=False, error="refused"), at + 3)
    state.refresh(at + 3)
    row = state.rollup()
    assert row is not None
    assert (row.minute, row.probes, row.failures, row.samples) == (MINUTE, 4, 1, 3)
    assert row.latency_mean == pytest.approx(0.020)
    assert (row.latency_min, row.latency_max) == (0.010, 0.030)
    assert row.requests == 4  # probes behind the error ratio (no metrics)
    assert row.error_ratio == pytest.approx(0.25)


def test_day_and_week_views_merge_minutes_exactly(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.write_rollups(
        [
            rollup(MINUTE, p95=0.02, latency_mean=0.010, samples=10, latency_min=0.004, requests=100.0),
            rollup(MINUTE + 1, p95=0.04, latency_mean=0.020, samples=30, latency_max=0.09, error_ratio=0.1),
            rollup(MINUTE + 10, p95=0.08, rps=7.0),
            rollup(MINUTE - 1, p95=9.0),  # before `since`: left out
        ]
    )
    merged = store.history("api", MINUTE * 60.0, 10)
    assert [r.minute for r in merged] == [MINUTE, MINUTE + 10]
    first = merged[0]
    assert (first.probes, first.samples, first.requests) == (24, 40, 400.0)
    assert first.p95 == pytest.approx(0.03)  # the mean of the minutes' p95s
    assert first.latency_mean == pytest.approx((0.010 * 10 + 0.020 * 30) / 40)  # weighted by samples
    assert (first.latency_min, first.latency_max) == (0.004, 0.09)
    assert first.error_ratio == pytest.approx(300 * 0.1 / 400)  # weighted by requests
    assert merged[1].rps == 7.0
    assert [r.minute for r in store.history("api", MINUTE * 60.0, 60)] == [MINUTE]
    assert [r.p95 for r in store.history("api", MINUTE * 60.0)] == [0.02, 0.04, 0.08]  # the hour view


def test_pruning_deletes_only_minutes_older_than_the_retention_in_bounded_batches(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.write_rollups([rollup(MINUTE + i) for i in range(25)])
    assert store.prune_history((MINUTE + 20) * 60.0, limit=8) == 8
    assert store.prune_history((MINUTE + 20) * 60.0, limit=8) == 8
    assert store.prune_history((MINUTE + 20) * 60.0, limit=8) == 4
    assert store.prune_history((MINUTE + 20) * 60.0, limit=8) == 0
    assert [r.minute for r in store.rollups("api", 0)] == [MINUTE + i for i in range(20, 25)]


def test_watch_prunes_history_past_store_history(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\npath = "{db}"\nhistory = "2h"\n'
        '[[endpoints]]\nname = "api"\nurl = "http://127.0.0.1:9"\nadapter = "generic"\ninterval = 0.5\n'
    )
    now_minute = int(time.time() // 60)
    store = Store(db)
    store.write_rollups([rollup(now_minute - 180), rollup(now_minute - 100), rollup(now_minute - 5)])
    watch = subprocess.Popen(
        [sys.executable, "-m", "mlops_console", "--config", str(config), "watch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The 3-hour-old minute goes; the 100-minute-old one stays, and this minute's probes arrive.
        def pruned_and_probing() -> bool:
            minutes = {r.minute: r for r in store.rollups("api", 0)}
            return now_minute - 180 not in minutes and any(r.failures for r in minutes.values())

        poll_until(pruned_and_probing, 60, "pruning and this minute's rollup")
        assert now_minute - 100 in {r.minute for r in store.rollups("api", 0)}
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err[-2000:]


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


async def test_endpoint_screen_switches_hour_day_week_and_draws_the_expected_band(app: MlopsConsole) -> None:
    store = app.backend.store
    now_minute = int(sample.T0 // 60)
    # An hour ago at 20 ms, and a slow stretch 3 days ago that only the week shows.
    store.write_rollups(
        [dataclasses.replace(rollup(now_minute - m, p95=0.02), endpoint="iris-prod") for m in range(1, 60)]
        + [
            dataclasses.replace(rollup(now_minute - 3 * 1440 - m, p95=0.5, p99=0.6), endpoint="iris-prod")
            for m in range(60)
        ]
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        snap = sample.snapshot()
        banded = dataclasses.replace(
            snap,
            endpoints=[
                dataclasses.replace(e, bands=(("latency", 0.0, 0.025), ("throughput", 2.0, 9.0)))
                if e.name == "iris-prod"
                else e
                for e in snap.endpoints
            ],
        )
        app.post_message(SnapshotReceived(banded))
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen)
        latency = screen.latency_chart.render().plain
        assert "last hour, per minute" in latency and "minutes ago" in latency
        assert "expected ≤ 25" in latency  # the detector's band, in ms
        traffic = screen.traffic_chart.render().plain
        assert "expected ≤ 9" in traffic and "expected ≥ 2" in traffic
        assert max(r.p95 or 0 for r in screen.rollups) == 0.02  # the slow stretch is not in the hour
        await pilot.press("h")
        await settle(pilot)
        assert "last day, 10-minute means" in screen.latency_chart.render().plain
        assert "hours ago" in screen.latency_chart.render().plain
        assert max(r.p95 or 0 for r in screen.rollups) == pytest.approx(0.02)
        await pilot.press("h")
        await settle(pilot)
        assert "last week, 60-minute means" in screen.latency_chart.render().plain
        assert max(r.p95 or 0 for r in screen.rollups) == pytest.approx(0.5)  # 3 days ago, found
        assert isinstance(screen.rollups, tuple)  # frozen: it crossed from the worker thread
        await pilot.press("h")
        await settle(pilot)
        assert "last hour, per minute" in screen.latency_chart.render().plain


async def test_a_prometheus_endpoints_charts_say_when_prometheus_cannot_answer(tmp_path: Path) -> None:
    """For an endpoint whose figures come from Prometheus the charts read its ranges (on a worker
    thread); with Prometheus unreachable they say so and show the stored history instead."""
    from tests._loopback import free_port

    store = Store(tmp_path / "console.db")
    sample.populate_store(store)
    now_minute = int(sample.T0 // 60)
    store.write_rollups(
        [dataclasses.replace(rollup(now_minute - m), endpoint="iris-prod") for m in range(1, 30)]
    )
    app = prometheus_console(store, tmp_path / "console.db", f"http://127.0.0.1:{free_port()}", timeout=2.0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen)
        said = str(screen.latency_chart.border_subtitle)
        assert "Prometheus: unreachable" in said and "stored history shown" in said, said
        assert len(screen.rollups) == 29  # the store's, drawn
        assert "last hour, per minute" in screen.latency_chart.render().plain
        # An endpoint probed by the console reads the store alone and says nothing of Prometheus.
        await pilot.press("escape")
        await pilot.press("colon", *"endpoint iris-staging", "enter")
        await settle(pilot)
        other = app.screen
        assert isinstance(other, EndpointDetailScreen) and other.endpoint_name == "iris-staging"
        assert str(other.latency_chart.border_subtitle) == ""


async def test_a_discovered_endpoints_charts_read_prometheus_too(tmp_path: Path) -> None:
    """An endpoint found by `[[discover]]` (known from its snapshot alone, not the config) reads its
    ranges from Prometheus as a configured one does: unreachable, its charts say so and draw the
    store's history; a probed endpoint beside it says nothing of Prometheus."""
    from mlops_console.config import PrometheusSettings
    from mlops_console.tui.sources import StaticSource
    from tests._loopback import free_port

    store = Store(tmp_path / "console.db")
    sample.populate_store(store)
    now_minute = int(sample.T0 // 60)
    name = "models-10.0.0.7:8080"
    store.write_rollups([dataclasses.replace(rollup(now_minute - m), endpoint=name) for m in range(1, 13)])
    base = sample.settings(tmp_path / "console.db")
    settings = base.model_copy(
        update={"prometheus": PrometheusSettings(url=f"http://127.0.0.1:{free_port()}", timeout=2.0)}
    )
    snap = sample.snapshot()
    found = dataclasses.replace(
        snap.endpoints[0],
        name=name,
        url="http://10.0.0.7:8080",
        health_source="prometheus",
        discovered=True,
        prometheus_id="10.0.0.7:8080",
    )
    # Found a minute ago: two minutes stored, no probe latencies (the console does not probe it); its
    # sparkline holds Prometheus' medians, which are not probes to chart as such.
    new = dataclasses.replace(
        found,
        name="models-10.0.0.8:8080",
        prometheus_id="10.0.0.8:8080",
        latency_history=(0.0039, 0.004),
        p50=0.004,
        p95=0.011,
        p99=0.02,
        latency_source="prometheus",
    )
    store.write_rollups([dataclasses.replace(rollup(now_minute - m), endpoint=new.name) for m in (1, 2)])
    app = MlopsConsole(
        settings,
        store=store,
        registry=sample.SampleRegistry(),
        snapshot_source=StaticSource(dataclasses.replace(snap, endpoints=(*snap.endpoints, found, new))),
        clock=sample.clock,
        host_sampler=sample.host_sample,
        poll=False,
        actor="tester@console",
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *f"endpoint {name}", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen) and screen.endpoint_name == name
        said = str(screen.latency_chart.border_subtitle)
        assert "Prometheus: unreachable" in said and "stored history shown" in said, said
        assert str(screen.traffic_chart.border_subtitle) == said
        assert len(screen.rollups) == 12 and {r.endpoint for r in screen.rollups} == {name}
        assert "per minute, stored (Prometheus failed)" in screen.latency_chart.render().plain
        # The live view of a young one draws Prometheus' quantiles, saying so, not "no data yet".
        await pilot.press("escape")
        await pilot.press("colon", *f"endpoint {new.name}", "enter")
        await settle(pilot)
        young = app.screen
        assert isinstance(young, EndpointDetailScreen) and young.endpoint_name == new.name
        latency = young.latency_chart.render().plain
        assert "no data yet" not in latency, latency
        assert "Prometheus: 2 stored min + latest round" in latency, latency
        assert "minutes ago" in latency and "p95" in latency
        assert "stored history shown" in str(young.latency_chart.border_subtitle)
        await pilot.press("escape")
        await pilot.press("colon", *"endpoint iris-staging", "enter")
        await settle(pilot)
        other = app.screen
        assert isinstance(other, EndpointDetailScreen) and other.endpoint_name == "iris-staging"
        assert str(other.latency_chart.border_subtitle) == ""


def test_a_prometheus_read_endpoints_sparkline_is_its_recent_medians() -> None:
    """No probe times an endpoint whose health comes from `up{}`: its latency sparkline is the medians
    Prometheus gave, one a round, the last PROM_LATENCY_POINTS of them; a round without one adds
    nothing. Where the console's probes time it, the sparkline stays theirs."""
    from mlops_console.core.endpoint_state import PROM_LATENCY_POINTS, PromFigures

    endpoint = EndpointSettings(name="api", url="http://127.0.0.1:9", adapter="generic", source="prometheus")
    alone = EndpointState(endpoint, source="prometheus", health_source="prometheus")
    probed = EndpointState(endpoint, source="prometheus", health_source="probe")
    at = MINUTE * 60.0
    medians = [0.001 * (i + 1) + 1e-9 for i in range(PROM_LATENCY_POINTS + 5)]
    for i, p50 in enumerate(medians):
        for state in (alone, probed):
            state.set_prometheus(PromFigures(at + 15 * i, 4.0, 0.0, p50, 0.05, 0.09, 60))
    alone.set_prometheus(PromFigures(at + 15 * len(medians), 4.0, 0.0, None, None, None, 60))
    shown = alone.snapshot().latency_history
    assert shown == tuple(round(v, 6) for v in medians[-PROM_LATENCY_POINTS:]), shown
    probed.record(ProbeResult(ok=True, latency=0.25), at + 400)
    assert probed.snapshot().latency_history == (0.25,)


def test_a_prometheus_endpoints_minute_keeps_prometheus_quantiles() -> None:
    """An endpoint whose figures come from Prometheus has no probe latencies: its stored minute takes
    the quantiles Prometheus gave (so its charts and backtests have a latency history), except while
    they are stale (Prometheus could not answer: nothing made up)."""
    from mlops_console.core.endpoint_state import PromFigures

    state = EndpointState(
        EndpointSettings(name="api", url="http://127.0.0.1:9", adapter="generic", source="prometheus"),
        source="prometheus",
        health_source="prometheus",
    )
    at = MINUTE * 60.0
    state.set_prometheus(PromFigures(at, rps=4.0, error_ratio=0.0, p50=0.01, p95=0.05, p99=0.09, window=60))
    state.record(ProbeResult(ok=True), at)
    row = state.rollup()
    assert row is not None and (row.p50, row.p95, row.p99, row.rps) == (0.01, 0.05, 0.09, 4.0)
    assert row.samples == 0  # no probe latency went into it
    state.prometheus_failed("Prometheus unreachable", at + 1)
    stale = state.rollup()
    assert stale is not None and (stale.p50, stale.p95, stale.p99) == (None, None, None)
