"""Read-only mode hides every write action wherever actions are offered (footer, `?` help, command
palette), and every way of confirming a dialog (its button, its Enter key) carries the typed note."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, OptionList, Static
from textual.widgets._footer import FooterKey

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.ack import AckDialog
from mlops_console.tui.dialogs.silence import SilenceDialog
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.base import WRITE_ACTIONS
from mlops_console.tui.screens.help import HelpScreen
from mlops_console.tui.screens.models import ModelsScreen
from mlops_console.tui.screens.report import ReportScreen
from tests import sample

# What each screen offers that changes something, by action and by the words the user sees.
WRITES = {
    "2": (AlertsScreen, {"ack", "silence"}, ["Acknowledge the selected alert", "Silence the selected alert"]),
    "3": (
        ModelsScreen,
        {"promote", "rollback"},
        ["Promote the highlighted version", "Roll the model's alias back"],
    ),
}


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def footer_actions(app: MlopsConsole) -> set[str]:
    return {key.action for key in app.screen.query(FooterKey) if not key.has_class("-disabled")}


async def help_text(pilot, app: MlopsConsole) -> str:  # type: ignore[no-untyped-def]
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(app.screen, HelpScreen)
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(app.screen.query_one("#help-keys", Static).content)
    text = console.file.getvalue()
    await pilot.press("escape")
    await pilot.pause()
    return text


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


# -- what each screen offers, exactly --------------------------------------------------------------------
def help_rows(text: str) -> list[tuple[str, ...]]:
    """The `?` key table as (key, action, id) rows, the header left out."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [tuple(re.split(r"\s{2,}", line)) for line in lines[1:]]


APP_ROWS = [
    ("^q", "Quit the app and return to the command prompt."),
    (":", "Open the command bar (:alerts, :q...)", "app.command"),
    ("?", "Keys and help for this screen", "app.help"),
    ("1", "Endpoints overview", "app.overview"),
    ("2", "Alerts", "app.alerts"),
    ("3", "Registered models", "app.models"),
    ("4", "Audit trail", "app.audit"),
    ("5", "Training and batch pipelines", "app.pipelines"),
    ("^p", "Open the command palette"),
]
FOCUS_ROWS = [
    ("tab", "Focus Next"),
    ("shift+tab", "Focus Previous"),
    ("^c", "Copy selected text"),
    ("super+c", "Copy selected text"),
    ("esc", "Back to the previous screen", "screen.back"),
]
MODELS_READ = [
    ("filter", "models: filter", "Filter rows by text"),
    ("mark", "models: mark", "Mark a version for comparison"),
    ("compare", "models: compare", "Compare two versions' metrics"),
]
MODELS_WRITE = [
    ("promote", "models: promote", "Promote the highlighted version"),
    ("rollback", "models: roll back", "Roll the model's alias back"),
]


@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
async def test_models_and_report_screens_offer_exactly_their_actions(tmp_path: Path, read_only: bool) -> None:
    app = sample.make_app(tmp_path, read_only=read_only)
    async with app.run_test(size=(200, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        palette = [(action, title, tip) for title, tip, action in app.screen.palette_actions()]
        footer = footer_actions(app)
        models_help = help_rows(await help_text(pilot, app))
        app.push_screen(ReportScreen())
        await settle(pilot)
        report_palette = [(action, title, tip) for title, tip, action in app.screen.palette_actions()]
        report_footer = footer_actions(app)
        report_help = help_rows(await help_text(pilot, app))
    writes = [] if read_only else MODELS_WRITE
    assert palette == [MODELS_READ[0], *writes, *MODELS_READ[1:]]
    assert footer == {"command_bar", "command_palette", "help", "filter", "mark", "compare"} | {
        action for action, _, _ in writes
    }
    write_rows = [
        ("p", "Promote the highlighted version", "models.promote"),
        ("r", *MODELS_WRITE[1][2:], "models.rollback"),
    ]
    note = [("read-only: promote, rollback, ack and silence are disabled",)] if read_only else []
    assert models_help == [
        *FOCUS_ROWS,
        ("/", "Filter rows by text", "screen.filter"),
        *([] if read_only else write_rows),
        ("space", "Mark a version for comparison", "models.mark"),
        ("c", "Compare two versions' metrics", "models.compare"),
        ("^r", "Reload from the registry", "models.refresh"),
        *APP_ROWS,
        *note,
    ]
    # A screen without a filter offers none, in either mode; its own actions stay.
    assert report_palette == [
        ("span(-1)", "shift report: shorter", "Shorter span"),
        ("span(1)", "shift report: longer", "Longer span"),
        ("refresh_report", "shift report: refresh", "Read the report again"),
    ]
    assert report_footer == {
        "command_bar",
        "command_palette",
        "help",
        "refresh_report",
        "span(-1)",
        "span(1)",
    }
    assert report_help == [
        *FOCUS_ROWS,
        ("[", "Shorter span", "report.shorter"),
        ("]", "Longer span", "report.longer"),
        ("r", "Read the report again", "report.refresh"),
        *APP_ROWS,
        *note,
    ]
