"""An endpoint discovered before the watcher restarted, not found again yet (discovery has its grace, and
here Prometheus never answers): its alert is still open, so the overview shows it, waiting for
discovery, with its last figures stale, instead of leaving it out. The real engine on a real store file
makes the snapshot; the console shows it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mlops_console.config import EndpointSettings, Settings, parse_settings
from mlops_console.core.alerts.external import open_external_alert
from mlops_console.core.endpoint_state import EndpointState, PromFigures
from mlops_console.core.engine import Engine
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Store
from mlops_console.core.takeover import last_seen
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from tests import sample
from tests._loopback import async_wait_for, free_port
from tests._tui import settle

NAME = "m-10.0.0.7:8080"


def discovering(path: Path) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(path)},
            "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "interval": 0.2, "timeout": 0.5},
            "discover": [{"targets": {"job": "models"}, "name": "m-{instance}"}],
        }
    )


async def remembered_after_a_restart(path: Path) -> tuple[EndpointSnapshot, Store]:
    """A watcher that had discovered NAME (and fired `down` for it) wrote its row; the next one leads
    while discovery cannot answer."""
    settings = discovering(path)
    store = Store(path)
    before = Engine(settings, store)
    endpoint = EndpointSettings(
        name=NAME, url="http://10.0.0.7:8080", source="prometheus", prometheus_id="10.0.0.7:8080"
    )
    state = EndpointState(endpoint, source="prometheus", health_source="prometheus", discovered=True)
    state.set_prometheus(PromFigures(time.time(), 12.0, 0.0, 0.004, 0.0091, 0.015, 60.0))
    before.endpoints[NAME] = state
    await before.write_status()
    down = {"rule": "down", "endpoint": NAME, "model": None, "version": None, "summary": "down"}
    open_external_alert(store, settings, severity="critical", **down)
    after = Engine(settings, Store(path))
    stop = asyncio.Event()
    task = asyncio.create_task(after.run(stop))
    try:
        await async_wait_for(lambda: after.leader and after.prometheus.state != "connecting", what="a round")
        (shown,) = [e for e in after.snapshot().endpoints if e.name == NAME]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    return shown, store


async def test_a_remembered_endpoint_is_shown_waiting_for_discovery(tmp_path: Path) -> None:
    shown, store = await remembered_after_a_restart(tmp_path / "watch.db")
    assert (shown.health, shown.firing, shown.p95) == ("unknown", ("down",), 0.0091)
    assert shown.stale is not None and "waiting for discovery" in shown.stale
    # Followers read the store's row: it says so too, and still knows when it was last seen.
    (row,) = [r for r in store.read_status() if r["name"] == NAME]
    assert EndpointSnapshot.from_dict(row).remembered == shown.remembered is not None
    assert last_seen(row) == shown.remembered < row["updated_at"], "a restart now says when it was seen"
    assert [a.endpoint for a in store.open_alerts()] == [NAME], "nothing resolved meanwhile"

    app = sample.make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.post_message(SnapshotReceived(sample.snapshot_with(shown)))
        await pilot.pause()
        table = app.screen.table

        def cell(column: str) -> str:
            value = table.get_cell(NAME, column)
            return getattr(value, "plain", str(value))

        assert cell("health") == "? waiting"
        assert cell("name") == f"{NAME} ⚑1"
        assert cell("p95") == "9.1ms~"
        await pilot.press("colon", *f"endpoint {NAME}", "enter")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        summary = str(app.screen.summary.render())
        assert summary.startswith(f"? waiting  {NAME}"), summary.splitlines()[0]
        assert "remembered from before the watcher restarted" in summary
