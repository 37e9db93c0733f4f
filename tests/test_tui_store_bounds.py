"""The console over rows written before silences were bounded, and its dialogs' bound on notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from mlops_console.core.limits import MAX_TEXT
from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.ack import AckDialog
from mlops_console.tui.dialogs.silence import SilenceDialog
from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
from mlops_console.tui.screens.alerts import AlertsScreen
from tests import sample
from tests.test_tui_app import rows, settle


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


def errors(app: MlopsConsole) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def canary(app: MlopsConsole) -> dict:
    return next(a for a in app.backend.store.list_alerts("open") if a.endpoint == "ranker-canary")


@pytest.mark.parametrize("until", [1.0e17, float("inf")])
async def test_alerts_and_timeline_show_a_silence_ending_beyond_any_calendar(
    app: MlopsConsole, until: float
) -> None:
    store = app.backend.store
    alert_id = canary(app).id
    with store.write() as db:
        db.execute("UPDATE alerts SET silenced_until=? WHERE id=?", [until, alert_id])
    store.add_event(alert_id, "silenced", actor="bob@ops", data={"until": until})
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        row = next(r for r in rows(screen.table) if r[2] == str(alert_id))
        assert row[0] == "◌ silenced" and row[-2].startswith("until ") and "nan" not in row[-2]
        screen.table.move_cursor(row=screen.table.get_row_index(str(alert_id)))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertTimelineScreen)
        timeline = rows(app.screen.table)
        [bobs] = [r for r in timeline if r[1] == "◌ silenced" and r[2] == "bob@ops"]
        assert bobs[3].startswith("until ")
        assert errors(app) == []


async def test_ack_dialog_refuses_an_overlong_note_and_keeps_it_for_editing(app: MlopsConsole) -> None:
    store = app.backend.store
    target = next(a for a in store.list_alerts("firing") if a.endpoint == "fraud-scorer")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app.screen.table.move_cursor(row=app.screen.table.get_row_index(str(target.id)))
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, AckDialog)
        note = dialog.query_one("#note", Input)
        note.value = "x" * (MAX_TEXT + 1)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and note.value == "x" * (MAX_TEXT + 1)
        assert errors(app) == [f"the note is too long ({MAX_TEXT + 1} characters; at most {MAX_TEXT})"]
        assert store.get_alert(target.id).state == "firing"
        note.value = "x" * MAX_TEXT
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
    assert store.get_alert(target.id).ack_note == "x" * MAX_TEXT


async def test_silence_dialog_refuses_an_overlong_note(app: MlopsConsole) -> None:
    store = app.backend.store
    target = next(a for a in store.list_alerts("firing") if a.endpoint == "fraud-scorer")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app.screen.table.move_cursor(row=app.screen.table.get_row_index(str(target.id)))
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SilenceDialog)
        dialog.query_one("#note", Input).value = "y" * (MAX_TEXT + 1)
        await pilot.press("2")  # 1h
        await settle(pilot)
        assert app.screen is dialog
        assert errors(app) == [f"the note is too long ({MAX_TEXT + 1} characters; at most {MAX_TEXT})"]
    assert store.get_alert(target.id).silenced_until is None
