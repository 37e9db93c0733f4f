"""Reading what a console screen offers: its footer keys, its `?` help, settling its workers."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.screens.help import HelpScreen


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
