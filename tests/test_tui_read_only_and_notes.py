"""Read-only mode hides every write action wherever actions are offered (footer, `?` help, command
palette), and every way of confirming a dialog (its button, its Enter key) carries the typed note."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.ack import AckDialog
from mlops_console.tui.dialogs.silence import SilenceDialog
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.base import WRITE_ACTIONS
from mlops_console.tui.screens.models import ModelsScreen
from tests import sample
from tests._tui import settle
from tests._tui_offers import footer_actions, help_text

# What each screen offers that changes something, by action and by the words the user sees.
WRITES = {
    "2": (AlertsScreen, {"ack", "silence"}, ["Acknowledge the selected alert", "Silence the selected alert"]),
    "3": (
        ModelsScreen,
        {"promote", "rollback"},
        ["Promote the highlighted version", "Roll the model's alias back"],
    ),
}


async def offers(app: MlopsConsole, pilot, key: str) -> tuple[set[str], str, list[str]]:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    await settle(pilot)
    screen_type = WRITES[key][0]
    assert isinstance(app.screen, screen_type)
    footer = footer_actions(app)
    palette = [action for _, _, action in app.screen.palette_actions()]
    return footer, await help_text(pilot, app), palette


@pytest.mark.parametrize("key", list(WRITES))
async def test_read_only_hides_write_actions_from_footer_help_and_palette(tmp_path: Path, key: str) -> None:
    _, actions, words = WRITES[key]
    writable = sample.make_app(tmp_path / "rw")
    async with writable.run_test(size=(200, 48)) as pilot:
        footer, help_keys, palette = await offers(writable, pilot, key)
    # The same screen in a writable console offers them: the checks below can see them.
    assert actions <= footer and actions <= set(palette)
    assert all(word in help_keys for word in words)

    read_only = sample.make_app(tmp_path / "ro", read_only=True)
    async with read_only.run_test(size=(200, 48)) as pilot:
        footer, help_keys, palette = await offers(read_only, pilot, key)
        assert "READ-ONLY" in read_only.status_text().plain
    assert not footer & WRITE_ACTIONS, footer
    assert not set(palette) & WRITE_ACTIONS, palette
    assert not any(word in help_keys for word in words), help_keys
    assert "read-only: promote, rollback, ack and silence are disabled" in help_keys


async def test_read_only_palette_offers_no_write_command(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path, read_only=True)
    async with app.run_test(size=(200, 48)) as pilot:
        for key in WRITES:
            await pilot.press(key)
            await settle(pilot)
            titles = [title for title, _, _ in app.screen.palette_actions()]
            assert not [t for t in titles if any(w in t for w in ("ack", "silence", "promote", "roll"))]


def mismatch_alert(app: MlopsConsole) -> int:
    """The sample's version_mismatch alert: it fired 5 minutes after a promote of its model."""
    return next(a.id for a in app.backend.store.list_alerts("firing") if a.rule == "version_mismatch")


async def offers_on_alert(app: MlopsConsole, pilot, alert_id: int) -> tuple[set[str], str, list[str]]:  # type: ignore[no-untyped-def]
    await pilot.press("2")
    await settle(pilot)
    table = app.screen.table
    table.move_cursor(row=table.get_row_index(str(alert_id)))
    await settle(pilot)
    footer = footer_actions(app)
    palette = [action for _, _, action in app.screen.palette_actions()]
    return footer, await help_text(pilot, app), palette


async def test_read_only_hides_rolling_back_the_change_before_an_alert(tmp_path: Path) -> None:
    # `R` on an alert that followed a promote: a write offered only while that alert is selected.
    words = "Roll back the promote/rollback that preceded this alert"
    writable = sample.make_app(tmp_path / "rw")
    async with writable.run_test(size=(200, 48)) as pilot:
        footer, help_keys, palette = await offers_on_alert(writable, pilot, mismatch_alert(writable))
        # An alert no promote preceded offers nothing to roll back (the key stays listed in `?`).
        unrelated_footer, _, unrelated_palette = await offers_on_alert(writable, pilot, firing(writable).id)
    assert "rollback_change" in footer and "rollback_change" in palette and words in help_keys
    assert "rollback_change" not in unrelated_footer and "rollback_change" not in unrelated_palette

    read_only = sample.make_app(tmp_path / "ro", read_only=True)
    async with read_only.run_test(size=(200, 48)) as pilot:
        footer, help_keys, palette = await offers_on_alert(read_only, pilot, mismatch_alert(read_only))
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(read_only.screen, AlertsScreen), "the key does nothing either"
    assert "rollback_change" not in footer and "rollback_change" not in palette
    assert words not in help_keys
    assert not [r for r in read_only.backend.store.list_audit() if r.actor == "tester@console"]


# -- the typed note travels with every way of confirming ---------------------------------------------------
def firing(app: MlopsConsole):  # type: ignore[no-untyped-def]
    return next(a for a in app.backend.store.list_alerts("firing") if a.endpoint == "fraud-scorer")


async def open_dialog(pilot, app: MlopsConsole, alert_id: int, key: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("2")
    await settle(pilot)
    table = app.screen.table
    table.move_cursor(row=table.get_row_index(str(alert_id)))
    await pilot.press(key)
    await pilot.pause()


@pytest.mark.parametrize("how", ["enter", "button"])
async def test_ack_note_is_carried_by_enter_and_by_the_button(tmp_path: Path, how: str) -> None:
    app = sample.make_app(tmp_path)
    target = firing(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_dialog(pilot, app, target.id, "a")
        dialog = app.screen
        assert isinstance(dialog, AckDialog)
        await pilot.press(*f"via {how}")
        if how == "enter":
            await pilot.press("enter")
        else:
            await pilot.click("#ok")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
    alert = app.backend.store.get_alert(target.id)
    assert (alert.state, alert.ack_note, alert.acked_by) == ("acknowledged", f"via {how}", "tester@console")
    [audit] = [r for r in app.backend.store.list_audit(action="ack") if r.actor == "tester@console"]
    assert audit.reason == f"via {how}"


async def test_ack_cancel_button_changes_nothing(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    target = firing(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_dialog(pilot, app, target.id, "a")
        await pilot.press(*"never mind")
        await pilot.click("#cancel")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
    assert app.backend.store.get_alert(target.id).state == "firing"


@pytest.mark.parametrize(("how", "seconds"), [("enter", 3600.0), ("option", 14400.0), ("key", 86400.0)])
async def test_silence_note_is_carried_by_enter_the_list_and_the_number_key(
    tmp_path: Path, how: str, seconds: float
) -> None:
    app = sample.make_app(tmp_path)
    target = firing(app)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_dialog(pilot, app, target.id, "s")
        dialog = app.screen
        assert isinstance(dialog, SilenceDialog)
        note = dialog.query_one("#note", Input)
        note.value = f"quiet via {how}"
        if how == "enter":
            dialog.query_one(OptionList).highlighted = 1  # 1h
            note.focus()
            await pilot.press("enter")
        elif how == "option":
            options = dialog.query_one(OptionList)
            options.focus()
            options.highlighted = 2  # 4h
            await pilot.press("enter")
        else:
            dialog.query_one(OptionList).focus()
            await pilot.press("4")  # 24h
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
    store = app.backend.store
    [event] = [e for e in store.events(target.id) if e.kind == "silenced"]
    assert event.note == f"quiet via {how}" and event.actor == "tester@console"
    assert event.data["until"] - event.at == pytest.approx(seconds)
    [audit] = [r for r in store.list_audit(action="silence") if r.actor == "tester@console"]
    assert audit.reason == f"quiet via {how}" and audit.detail["seconds"] == seconds
