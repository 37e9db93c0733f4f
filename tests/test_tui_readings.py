"""What the console's numbers say: nothing stale shown as current, pending apart from firing, charts
with units, and screenshots whose words stay apart."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from mlops_console.tui.text import DASH
from tests import sample
from tests._loopback import async_wait_for
from tests._tui import settle


def cell(table: DataTable, row: str, column: str) -> str:
    value = table.get_cell(row, column)
    return getattr(value, "plain", str(value))


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


async def iris_detail(pilot: Pilot) -> EndpointDetailScreen:
    """iris-prod's detail screen, opened from the command bar."""
    await pilot.press("colon", *"endpoint iris-prod", "enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, EndpointDetailScreen)
    return screen


def version_panel(screen: EndpointDetailScreen) -> str:
    """The served-version panel as shown (its record is a table, not text)."""
    out = Console(width=80, no_color=True)
    with out.capture() as shown:
        out.print(screen.version_panel.content)
    return shown.get()


def _with(snap, name: str, **changes):
    return dataclasses.replace(
        snap, endpoints=[dataclasses.replace(e, **changes) if e.name == name else e for e in snap.endpoints]
    )


async def test_a_down_endpoint_shows_no_current_latency(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.table
        assert cell(table, "iris-prod", "p95") == "9.1ms"
        down = _with(sample.snapshot(), "iris-prod", health="down", consecutive_failures=3)
        app.post_message(SnapshotReceived(down))
        await pilot.pause()
        assert [cell(table, "iris-prod", c) for c in ("p50", "p95", "p99")] == [DASH] * 3
        assert cell(table, "iris-staging", "p95") == "8.0ms"  # the others are untouched
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        summary = str(app.screen.summary.render())
        assert "latency stale (from before it went down, metrics) p50 4.2ms  p95 9.1ms" in summary
        app.post_message(SnapshotReceived(sample.snapshot()))  # back up: current again, not stale
        await pilot.pause()
        summary = str(app.screen.summary.render())
        assert "stale" not in summary and "p50 4.2ms  p95 9.1ms  p99 15ms  (metrics)" in summary


async def test_pending_conditions_are_counted_apart_from_firing_alerts(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.table
        # iris-staging's latency rule holds but its `for` has not elapsed: pending, not firing
        assert cell(table, "iris-staging", "name") == "iris-staging ⚐1"
        assert cell(table, "iris-prod", "name") == "iris-prod ⚑2"  # version_mismatch, feature_drift
        status = app.status_text().plain
        assert "alerts 2 firing · 1 pending · 1 acked" in status
        both = _with(sample.snapshot(), "iris-prod", firing=["version_mismatch", "latency_p95 (pending)"])
        app.post_message(SnapshotReceived(both))
        await pilot.pause()
        assert cell(table, "iris-prod", "name") == "iris-prod ⚑1 ⚐1"
        assert "2 pending" in app.status_text().plain
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        summary = str(app.screen.summary.render())
        assert "firing: version_mismatch\npending: latency_p95" in summary
        none = _with(sample.snapshot(), "iris-staging", firing=[])
        app.post_message(SnapshotReceived(none))
        await pilot.pause()
        assert "pending" not in app.status_text().plain


async def test_charts_name_their_units_and_show_the_error_share(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen)
        latency = screen.latency_chart.render().plain
        traffic = screen.traffic_chart.render().plain
        assert "ms" in latency.splitlines()[-1] and "seconds ago" in latency
        assert "req/s" in traffic.splitlines()[-1] and "errors %" in traffic and "minutes ago" in traffic
        assert "errors % (now 0%)" in traffic  # the error share is drawn beside the throughput
        # x ticks are ages: 0 at the right, no negative numbers
        assert latency.splitlines()[-2].rstrip().endswith("0") and "-" not in latency.splitlines()[-2]


async def test_screenshots_keep_the_spaces_between_words(app: MlopsConsole) -> None:
    """Each styled run is its own SVG `<text>`; without xml:space renderers eat its edge spaces."""
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        svg = app.export_screenshot()
        assert svg.startswith("<svg") and 'xml:space="preserve"' in svg.split(">", 1)[0]
        # the host panel line that ran together ("iris-prodpid 4242") has its spaces in the SVG text
        assert "&#160;&#160;pid&#160;4242" in svg


async def test_a_loading_endpoint_shows_as_loading_not_down(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.table
        loading = _with(sample.snapshot(), "iris-prod", health="loading", consecutive_failures=0)
        app.post_message(SnapshotReceived(loading))
        await pilot.pause()
        assert cell(table, "iris-prod", "health") == "◌ loading"
        status = app.status_text().plain
        assert "◌ 1 loading" in status and "✖ 1 down" in status  # the sample's one down endpoint


async def test_figures_from_an_unanswering_prometheus_show_as_stale(app: MlopsConsole) -> None:
    from mlops_console.tui.status_line import status_line

    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.table
        reason = "Prometheus http://prom:9090: bad_data: parse error"
        stale = dataclasses.replace(
            _with(sample.snapshot(), "iris-prod", stale=reason, health_source="prometheus"),
            prometheus="http://prom:9090: bad_data: parse error",
        )
        app.post_message(SnapshotReceived(stale))
        await pilot.pause()
        # The last good values stay, marked; the other endpoints' are current.
        assert cell(table, "iris-prod", "p95") == "9.1ms~"
        assert cell(table, "iris-prod", "rps").endswith("~")
        assert cell(table, "iris-staging", "p95") == "8.0ms"
        assert "prometheus bad_data: parse error" in status_line(app).plain
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        summary = str(app.screen.summary.render())
        assert f"latency stale ({reason}) p50 4.2ms" in summary
        assert "health from Prometheus up{} · readings 720, failed 0" in summary, summary
        app.post_message(SnapshotReceived(sample.snapshot()))
        await pilot.pause()
        assert "stale" not in str(app.screen.summary.render())


async def test_the_served_version_panel_says_why_it_shows_no_version(app: MlopsConsole) -> None:
    """The detail screen's version panel shows the registry's record of the served version; an
    endpoint with no model set, or none known yet, says so instead of "loading…" for ever, and the
    record appears once a version is known."""
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        unknown = _with(sample.snapshot(), "iris-prod", served_version=None, expected_version=None)
        app.post_message(SnapshotReceived(unknown))
        await pilot.pause()
        screen = await iris_detail(pilot)

        def panel() -> str:
            return version_panel(screen)

        assert "model version: not known yet" in panel(), panel()
        assert "· probes 720, failed 0, 0 in a row" in str(screen.summary.render()), "its own probes counted"
        app.post_message(SnapshotReceived(sample.snapshot()))  # serves v2, the registry has its record
        await async_wait_for(lambda: "accuracy" in panel(), what="the registry's record of v2")
        assert "iris v2" in panel() and "0.91" in panel(), panel()
        assert str(screen.version_panel.border_title) == "served model version v2"
        app.post_message(SnapshotReceived(_with(sample.snapshot(), "iris-prod", model=None)))
        await async_wait_for(lambda: "model version: no model set" in panel(), what="no model")


class _LateRegistry(sample.SampleRegistry):
    """The sample registry, whose version lookups answer only once let (a registry under load), while
    `held` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()
        self.asked = threading.Event()
        self.answer = threading.Event()

    def version(self, name: str, version: str | int, with_metrics: bool = True) -> Any:
        if self.held.is_set():
            self.asked.set()
            self.answer.wait(timeout=15)
        return super().version(name, version, with_metrics)


async def test_the_served_version_panel_never_shows_a_version_the_endpoint_left(tmp_path: Path) -> None:
    """The version panel's record and title follow the endpoint: once it has no model, neither the
    record shown before (its title included) nor a lookup answered late for the version it served
    meanwhile puts a version back on the panel."""
    registry = _LateRegistry()
    app = sample.make_app(tmp_path, registry=registry)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = await iris_detail(pilot)

        def panel() -> str:
            return version_panel(screen)

        def title() -> str:
            return str(screen.version_panel.border_title)

        await async_wait_for(lambda: "iris v2" in panel(), what="the registry's record of v2")
        assert title() == "served model version v2"
        registry.held.set()
        app.post_message(SnapshotReceived(_with(sample.snapshot(), "iris-prod", served_version="1")))
        await async_wait_for(registry.asked.is_set, what="v1 looked up")
        app.post_message(SnapshotReceived(_with(sample.snapshot(), "iris-prod", model=None)))
        await async_wait_for(lambda: "model version: no model set" in panel(), what="no model")
        assert "v2" not in title(), title()
        registry.answer.set()  # v1's record arrives after the endpoint left it
        await settle(pilot)
        assert "model version: no model set" in panel(), panel()
        assert "v1" not in title() and "v2" not in title(), title()
