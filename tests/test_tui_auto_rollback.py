"""Automatic rollback in the console, with the real engine, store and a sqlite-backed registry, and a
loopback endpoint that reports serving v3: the models screen shows the promote's remaining window,
`C` on an alert cancels it (audited with the console's actor), and the alert that triggered a rollback
shows it on its timeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.models import ModelsScreen
from tests._changes import promote
from tests._loopback import FaultServer, async_wait_for
from tests._tui import settle

ACTOR = "tester@console"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer()
    s.version = "3"
    s.start()
    yield s
    s.stop()


def make_settings(tmp_path: Path, tracking_uri: str, server: FaultServer, rules: list[str]) -> Settings:
    return parse_settings(
        {
            "registry": {"tracking_uri": tracking_uri, "timeout": 10},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {
                    "name": "iris-prod",
                    "url": server.url,
                    "model": "iris",
                    "alias": "production",
                    "interval": 0.3,
                    "timeout": 1,
                }
            ],
            "auto_rollback": [{"model": "iris", "watch": "10m", "rules": rules}],
        }
    )


def subtitle(screen: ModelsScreen) -> str:
    return str(screen.versions_table.border_subtitle)


async def test_the_models_screen_shows_the_window_and_c_on_an_alert_cancels_it(
    mlflow_registry, tmp_path: Path, server: FaultServer
) -> None:
    # `down` is not one of the watched rules here: the alert stays, nothing rolls back by itself.
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, server, ["latency_p95"])
    store = Store(settings.store.path)
    registry = RegistryClient(settings.registry)
    assert promote(settings, store, registry, "iris", 3, actor="ci").ok
    server.faults.mode = "error"
    app = MlopsConsole(settings, actor=ACTOR)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        models.models_table.move_cursor(row=models.models_table.get_row_index("iris"))
        await async_wait_for(lambda: "auto-rollback:" in subtitle(models), what="the window under versions")
        assert "m" in subtitle(models) and "left (v3)" in subtitle(models)

        down = await async_wait_for(
            lambda: next((a for a in store.list_alerts("firing") if a.rule == "down"), None),
            timeout=30,
            what="the engine to raise `down`",
        )
        await pilot.press("2")
        await settle(pilot)
        alerts = app.screen
        assert isinstance(alerts, AlertsScreen)
        await async_wait_for(lambda: str(down.id) in {r.key.value for r in alerts.table.ordered_rows})
        alerts.table.move_cursor(row=alerts.table.get_row_index(str(down.id)))
        await pilot.press("C")
        await async_wait_for(
            lambda: store.list_audit(action="cancel_auto_rollback"), what="the cancellation's audit row"
        )
        await pilot.press("3")
        await async_wait_for(
            lambda: "auto-rollback of v3: cancelled" in subtitle(models),
            timeout=15,
            what="the cancelled window",
        )
    [row] = store.list_audit(action="cancel_auto_rollback")
    assert (row.actor, row.to_version, row.reason) == (ACTOR, "3", f"cancelled from alert #{down.id}")
    assert registry.alias_version("iris", "production") == "3"


async def test_the_console_holding_the_lease_rolls_back_and_the_alert_links_to_it(
    mlflow_registry, tmp_path: Path, server: FaultServer
) -> None:
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, server, ["down"])
    store = Store(settings.store.path)
    registry = RegistryClient(settings.registry)
    assert promote(settings, store, registry, "iris", 3, actor="ci").ok
    app = MlopsConsole(settings, actor=ACTOR)
    async with app.run_test(size=(160, 48)) as pilot:

        def served() -> str | None:
            thread = app.source._engine  # type: ignore[attr-defined]
            engine = thread.engine if thread is not None else None
            return engine.endpoints["iris-prod"].served_version if engine is not None else None

        await async_wait_for(lambda: served() == "3", timeout=30, what="the console's engine to see v3")
        server.faults.mode = "error"
        decision = await async_wait_for(
            lambda: next((d for d in store.auto_rollback_decisions() if d.finished_at), None),
            timeout=60,
            what="the automatic rollback",
        )
        assert decision.state == "rolled_back" and decision.alert_id is not None
        app.push_screen(AlertTimelineScreen(decision.alert_id))
        await settle(pilot)
        timeline = app.screen
        assert isinstance(timeline, AlertTimelineScreen)
        await async_wait_for(lambda: timeline.table.row_count > 1, what="the timeline")
        rows = [[str(cell) for cell in timeline.table.get_row(key)] for key in timeline.table.rows]
        assert any(
            row[1] == "auto_rollback" and row[3] == "rolled back iris production v3 -> v2, nothing redeployed"
            for row in rows
        ), rows
        # The window ended with the rollback; the models screen says what was decided.
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        models.models_table.move_cursor(row=models.models_table.get_row_index("iris"))
        await async_wait_for(
            lambda: "auto-rollback of v3: rolled back" in subtitle(models), timeout=15, what="the decision"
        )
    assert registry.alias_version("iris", "production") == "2"
    [row] = store.list_audit(action="rollback")
    assert (row.actor, row.result) == ("auto-rollback", "ok")
