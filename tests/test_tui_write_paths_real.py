"""The console's write paths against real parts: a sqlite-backed MLflow registry, a real store, the
real engine probing a real HTTP endpoint (the loopback fault server), real deploy hooks.

Roll back from the models screen, roll back from an alert that followed a promote (`R`), acknowledge
and silence an alert the engine raised: each checked where it lands (the registry, the store, the
audit trail), never in the sample data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.ack import AckDialog
from mlops_console.tui.dialogs.confirm_change import ChangeDialog
from mlops_console.tui.dialogs.silence import SilenceDialog
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.models import ModelsScreen
from tests._changes import promote
from tests._loopback import FaultServer, async_wait_for
from tests._tui import settle

ACTOR = "tester@console"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer().start()
    yield s
    s.stop()


def make_settings(tmp_path: Path, tracking_uri: str, server: FaultServer) -> Settings:
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
                    "interval": 0.5,
                    "timeout": 1,
                    "deploy": {"command": "true", "verify_timeout": 2},
                }
            ],
        }
    )


@contextlib.asynccontextmanager
async def console(settings: Settings):  # type: ignore[no-untyped-def]
    app = MlopsConsole(settings, actor=ACTOR)  # the real engine, store and registry
    async with app.run_test(size=(160, 48)) as pilot:
        yield app, pilot


async def confirm(pilot, app: MlopsConsole, reason: str) -> ChangeDialog:  # type: ignore[no-untyped-def]
    dialog = app.screen
    assert isinstance(dialog, ChangeDialog)
    await async_wait_for(lambda: dialog.plan is not None, what="the plan")
    assert dialog.plan is not None and dialog.plan.ok, dialog.plan.problems
    reason_input = dialog.query_one("#reason")
    reason_input.value = reason  # type: ignore[attr-defined]
    reason_input.focus()
    await pilot.press("enter")
    await async_wait_for(lambda: dialog.result is not None, timeout=60, what="the change to finish")
    return dialog


async def test_rollback_from_the_models_screen_moves_the_alias_back(
    mlflow_registry, tmp_path: Path, server: FaultServer
) -> None:
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, server)
    registry = RegistryClient(settings.registry)
    server.version = "3"
    assert promote(settings, Store(settings.store.path), registry, "iris", 3, actor="ci").ok  # 2 -> 3
    server.version = "2"  # the redeploy the rollback triggers brings v2 back
    async with console(settings) as (app, pilot):
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        screen.models_table.move_cursor(row=screen.models_table.get_row_index("iris"))
        await settle(pilot)
        assert screen.current_model == "iris"
        await pilot.press("r")
        await settle(pilot)
        dialog = await confirm(pilot, app, "bad v3")
        assert dialog.plan is not None and (dialog.plan.current_version, dialog.plan.new_version) == (
            "3",
            "2",
        )
        assert dialog.result is not None and dialog.result.ok, dialog.result.message
    assert registry.alias_version("iris", "production") == "2"
    [row] = [r for r in Store(settings.store.path).list_audit(action="rollback") if r.actor == ACTOR]
    assert (row.from_version, row.to_version, row.reason, row.result) == ("3", "2", "bad v3", "ok")


async def test_rollback_from_an_alert_that_followed_a_promote(
    mlflow_registry, tmp_path: Path, server: FaultServer
) -> None:
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, server)
    registry = RegistryClient(settings.registry)
    store = Store(settings.store.path)
    server.version = "2"  # the redeploy of v3 never takes: the endpoint keeps serving v2
    promoted = promote(settings, store, registry, "iris", 3, actor="ci")
    assert promoted.changed and not promoted.ok and len(promoted.alert_ids) == 1
    [alert_id] = promoted.alert_ids
    async with console(settings) as (app, pilot):
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await async_wait_for(lambda: str(alert_id) in {r.key.value for r in screen.table.ordered_rows})
        screen.table.move_cursor(row=screen.table.get_row_index(str(alert_id)))
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        dialog = await confirm(pilot, app, f"alert #{alert_id} fired after promote")
        assert dialog.action == "rollback" and dialog.model == "iris"
        assert dialog.result is not None and dialog.result.ok, dialog.result.message
        # the endpoint serves the alias's version again: the engine resolves the alert
        await async_wait_for(
            lambda: store.get_alert(alert_id).state == "resolved",
            timeout=30,
            what="the deploy alert to resolve",
        )
    assert registry.alias_version("iris", "production") == "2"
    [row] = [r for r in store.list_audit(action="rollback") if r.actor == ACTOR]
    assert (row.from_version, row.to_version, row.result) == ("3", "2", "ok")
    assert row.reason == f"alert #{alert_id} fired after promote"


async def test_ack_and_silence_an_alert_the_engine_raised(
    mlflow_registry, tmp_path: Path, server: FaultServer
) -> None:
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, server)
    store = Store(settings.store.path)
    server.faults.mode = "error"  # HTTP 500 on every probe: `down` fires after two
    async with console(settings) as (app, pilot):
        down = await async_wait_for(
            lambda: next((a for a in store.list_alerts("firing") if a.rule == "down"), None),
            timeout=30,
            what="the engine to raise `down`",
        )
        assert down.endpoint == "iris-prod" and down.value is not None and down.value >= 2
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await async_wait_for(lambda: str(down.id) in {r.key.value for r in screen.table.ordered_rows})
        screen.table.move_cursor(row=screen.table.get_row_index(str(down.id)))
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AckDialog)
        await pilot.press(*"looking", "enter")
        await async_wait_for(lambda: store.get_alert(down.id).state == "acknowledged", what="the ack")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        screen.table.move_cursor(row=screen.table.get_row_index(str(down.id)))
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SilenceDialog)
        await pilot.press("1")  # 15m
        await async_wait_for(lambda: store.get_alert(down.id).display_state == "silenced", what="the silence")
        # the engine keeps probing the failing endpoint: one incident, still one alert
        assert [a.id for a in store.list_alerts("open") if a.rule == "down"] == [down.id]
    alert = store.get_alert(down.id)
    assert (alert.acked_by, alert.ack_note, alert.silenced_by) == (ACTOR, "looking", ACTOR)
    assert [e.kind for e in store.events(down.id) if e.actor == ACTOR] == ["acknowledged", "silenced"]
    assert {r.action for r in store.list_audit() if r.actor == ACTOR} == {"ack", "silence"}


async def test_a_sample_or_snapshot_arriving_after_the_screens_closed_is_dropped(tmp_path: Path) -> None:
    """The host poll and the engine post from their threads: one may land while the app shuts down
    (seen as `ScreenStackError: No screens on stack` when quitting with the real engine)."""
    from mlops_console.tui.messages import HostSampled, SnapshotReceived
    from tests import sample

    app = sample.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
    assert not app.screen_stack
    app.on_host_sampled(HostSampled(sample.host_sample()))
    app.on_snapshot_received(SnapshotReceived(sample.snapshot()))
    assert app.host_sample is not None and app.snapshot is not None
