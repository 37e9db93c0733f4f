"""An endpoint read from Prometheus as the engine publishes it (its latency medians and throughput as
packed doubles, not the tuples a status row reads back as) shows its sparkline in the overview and its
recent throughput on its detail screen. The real endpoint state makes the snapshot; the console shows
it."""

from __future__ import annotations

from pathlib import Path

from mlops_console.config import EndpointSettings
from mlops_console.core.endpoint_state import EndpointState, PromFigures
from mlops_console.core.packed import PackedFloats
from mlops_console.core.series import RPS_STEP
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from mlops_console.tui.text import sparkline
from mlops_console.tui.widgets.endpoint_columns import SPARK_WIDTH
from tests import sample
from tests._tui import settle

NAME = "m-10.0.0.9:8080"


async def test_a_prometheus_read_endpoint_as_published_shows_its_sparkline_and_throughput(
    tmp_path: Path,
) -> None:
    endpoint = EndpointSettings(
        name=NAME, url="http://10.0.0.9:8080", source="prometheus", prometheus_id="10.0.0.9:8080"
    )
    state = EndpointState(endpoint, source="prometheus", health_source="prometheus", discovered=True)
    medians = [0.004 + 0.001 * (k % 7) for k in range(30)]
    for k, p50 in enumerate(medians):
        rps = 10.0 + k
        state.set_prometheus(PromFigures(sample.T0 - RPS_STEP * (30 - k), rps, 0.0, p50, 0.01, 0.02, 60.0))
    shown = state.snapshot()
    assert isinstance(shown.latency_history, PackedFloats) and isinstance(shown.rps_history, PackedFloats)
    assert len(shown.rps_history) == 30

    app = sample.make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.post_message(SnapshotReceived(sample.snapshot_with(shown)))
        await pilot.pause()
        spark = app.screen.table.get_cell(NAME, "spark")
        expected = sparkline([round(m, 6) for m in medians], SPARK_WIDTH)
        assert getattr(spark, "plain", str(spark)) == expected and len(expected) == SPARK_WIDTH
        await pilot.press("colon", *f"endpoint {NAME}", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen) and screen.endpoint_name == NAME
        traffic = screen.traffic_chart.render().plain
        assert "no data yet" not in traffic and "req/s" in traffic, traffic
        ticks = [line.split("┤")[0].strip() for line in traffic.splitlines() if "┤" in line]
        assert (ticks[0], ticks[-1]) == ("39.0", "10.0"), "the axis spans the oldest rate to the newest"
        latency = screen.latency_chart.render().plain
        assert "no data yet" not in latency and "Prometheus: latest round" in latency, latency
