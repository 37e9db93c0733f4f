"""Promote from the models screen against a real sqlite-backed MLflow registry."""

from __future__ import annotations

from pathlib import Path

from mlops_console.config import RegistrySettings
from mlops_console.tui.dialogs.confirm_change import ChangeDialog
from mlops_console.tui.screens.models import ModelsScreen
from tests import sample
from tests._tui import settle


async def test_promote_from_models_screen_moves_the_alias(mlflow_registry, tmp_path: Path) -> None:
    from mlops_console.core.registry import RegistryClient

    app = sample.make_app(tmp_path, tracking_uri=mlflow_registry.tracking_uri, deploy=False)
    # No endpoint serves iris here, so the promote has nothing to redeploy or verify.
    app.settings.endpoints = [e for e in app.settings.endpoints if e.model != "iris"]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        names = [r.key.value for r in screen.models_table.ordered_rows]
        assert names == ["diabetes", "iris"]
        await pilot.press("down")  # iris
        await settle(pilot)
        assert screen.current_model == "iris"
        await pilot.press("tab")
        versions = [r.key.value for r in screen.versions_table.ordered_rows]
        assert versions == ["3", "2", "1"]
        await pilot.press("down", "down")  # v1
        await pilot.press("p")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ChangeDialog)
        assert (
            dialog.plan is not None and dialog.plan.current_version == "2" and dialog.plan.new_version == "1"
        )
        assert dialog.plan.ok, dialog.plan.problems
        await pilot.press(*"pilot test", "enter")
        await settle(pilot)
        assert dialog.result is not None and dialog.result.ok, dialog.result
        progress = "\n".join(str(line) for line in dialog.query_one("RichLog").lines)
        assert "v1" in progress
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
    client = RegistryClient(RegistrySettings(tracking_uri=mlflow_registry.tracking_uri))
    assert client.alias_version("iris", "production") == "1"
    audit = next(r for r in app.backend.store.list_audit(action="promote") if r.actor == "tester@console")
    assert (audit.from_version, audit.to_version, audit.reason, audit.result) == (
        "2",
        "1",
        "pilot test",
        "ok",
    )
