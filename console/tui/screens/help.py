"""`?`: what the current screen shows and every key that works on it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from mlops_console.tui.bindings import offered_bindings
from mlops_console.tui.widgets.command_bar import COMMANDS


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close", tooltip="Close help"),
    ]

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        screen = self.for_screen
        title = getattr(screen, "TITLE_TEXT", "") or type(screen).__name__
        with VerticalScroll(id="help-body") as body:
            body.border_title = f"help: {title}"
            yield Static(Text(getattr(screen, "HELP", "")), id="help-text")
            yield Static(self._keys(), id="help-keys")
            commands = Text("Command bar (:)  ", style="bold")
            commands.append(
                "  ".join(
                    f":{name}" + (f" (:{aliases[0]})" if aliases else "")
                    for name, aliases in COMMANDS.items()
                )
            )
            commands.append("  :endpoint NAME", style="")
            yield Static(commands, id="help-commands")

    def _keys(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
        table.add_column("key", no_wrap=True)
        table.add_column("action")
        table.add_column("id", style="dim")
        seen: set[str] = set()
        screen = self.for_screen
        read_only = getattr(self.app, "read_only", False)
        for node, binding in offered_bindings(screen):
            if not binding.description or binding.id in seen:
                continue
            if node is screen and screen.check_action(binding.action, ()) is False:
                continue
            seen.add(binding.id or binding.key)
            table.add_row(
                Text(self.app.get_key_display(binding)),
                Text(binding.tooltip or binding.description),
                Text(binding.id or ""),
            )
        if read_only:
            table.add_row(
                "", Text("read-only: promote, rollback, ack and silence are disabled", style="bold"), ""
            )
        return table

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
