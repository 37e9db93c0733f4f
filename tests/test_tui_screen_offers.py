"""Exactly what the models and the shift report screens offer, writable and read-only: the footer, the
palette and the `?` help rows with their keys and ids. Kept apart from the read-only tests as the fast
selection for the mutation run of the read-only gating (`scripts/mutation.py tui_gating`)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from mlops_console.tui.screens.help import HelpScreen
from mlops_console.tui.screens.report import ReportScreen
from tests import sample
from tests._tui import settle
from tests._tui_offers import footer_actions, help_text


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


async def test_help_keys_table_fills_the_width_with_a_bold_header_flush_left(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path, read_only=True)
    async with app.run_test(size=(200, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one("#help-keys", Static).content
        plain = Console(width=120, file=io.StringIO(), color_system=None)
        plain.print(keys)
        styled = Console(width=120, file=io.StringIO(), color_system="standard", force_terminal=True)
        styled.print(keys)
        narrow = Console(width=20, file=io.StringIO(), color_system=None)
        narrow.print(keys)
    lines = plain.file.getvalue().splitlines()
    # The key column starts at the left edge, and the id column ends at the right one.
    assert re.fullmatch(r"key +action +id *", lines[0]) and len(lines[0]) == 120
    assert lines[1].startswith("tab ") and all(len(line) == 120 for line in lines)
    # The header in bold, the binding ids dimmed.
    assert styled.file.getvalue().startswith("\x1b[1mkey") and "\x1b[2mapp.help" in styled.file.getvalue()
    # The read-only note: in bold, in the action column.
    assert "\x1b[1mread-only: promote, rollback, ack and silence are disabled" in styled.file.getvalue()
    assert lines[-1].index("read-only:") == lines[0].index("action")
    # A narrow help wraps the descriptions, never a key.
    assert any(line.startswith("shift+tab ") for line in narrow.file.getvalue().splitlines())


async def test_help_lists_a_binding_with_two_keys_once(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    # Two bindings with two keys each: the keymap's keys come last, in binding order, so the second key
    # of `app.help` is followed by `app.audit`'s keys.
    app.settings.tui.keymap = {"app.help": "question_mark,f1", "app.audit": "4,f4"}
    async with app.run_test(size=(200, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        rows = help_rows(await help_text(pilot, app))
    assert [row[1:] for row in rows if "app.help" in row] == [("Keys and help for this screen", "app.help")]
    assert [row[1:] for row in rows if "app.audit" in row] == [("Audit trail", "app.audit")]
    # Every other row is still there: the second key is skipped, not the end of the table.
    assert set(APP_ROWS) <= set(rows) and set(FOCUS_ROWS) <= set(rows)
