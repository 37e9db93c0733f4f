"""What every console screen shares: status line, command bar, filter bar, footer, `esc` back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.worker import Worker

from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.tui.bindings import declared_bindings
from mlops_console.tui.widgets.command_bar import CommandBar
from mlops_console.tui.widgets.filter_bar import FilterBar
from mlops_console.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from mlops_console.tui.app import MlopsConsole

# Actions that change production or alert state; absent in --read-only mode.
WRITE_ACTIONS = frozenset({"ack", "silence", "promote", "rollback", "rollback_change", "cancel_auto"})


class ConsoleScreen(Screen):
    """Subclasses implement `compose_body()`; they may override `show_snapshot()` and `reload()`."""

    TITLE_TEXT = ""
    HELP = ""
    """Shown by `?` above the key list: what this screen shows."""
    FILTERABLE = True
    POLL_SECONDS: float | None = None
    """Reload store/registry data this often while the screen is visible (None: never)."""

    BINDINGS = [
        Binding(
            "escape", "back", "Back", id="screen.back", tooltip="Back to the previous screen", show=False
        ),
        Binding("slash", "filter", "Filter", id="screen.filter", tooltip="Filter rows by text"),
    ]

    @property
    def console(self) -> MlopsConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield from self.compose_body()
        with Vertical(id="bottom"):
            if self.FILTERABLE:
                yield FilterBar(id="filter", apply_at_once=self.filter_applier())
            yield CommandBar(self.console.endpoint_names(), id="command")
            yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def filter_applier(self) -> Callable[[str], None] | None:
        """What applies the filter's text within each keystroke; None: the screen handles
        `FilterBar.Applied` messages instead."""
        return None

    # -- lifecycle -----------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.POLL_SECONDS and self.console.poll:
            self.set_interval(self.POLL_SECONDS, self._poll_tick)

    def _poll_tick(self) -> None:
        if self.is_current:
            self.reload()

    def on_screen_resume(self) -> None:
        self.query_one(StatusBar).show(self.console.status_text())
        snapshot = self.console.snapshot
        if snapshot is not None:
            self.show_snapshot(snapshot)
        self.reload()

    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        """A new engine snapshot while this screen is visible."""

    def reload(self) -> None:
        """(Re)load store/registry data for this screen, in a worker."""

    def store_changed(self, what: str) -> None:
        self.reload()

    def focus_main(self) -> None:
        """Focus the screen's main widget (the table)."""
        self.focus_next()

    def palette_actions(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for the command palette: only actions valid now."""
        out = []
        for binding in declared_bindings(self):
            if not binding.show or not binding.description:
                continue
            if self.check_action(binding.action, ()) is not True:
                continue
            out.append(
                (
                    f"{self.TITLE_TEXT.lower() or 'screen'}: {binding.description.lower()}",
                    binding.tooltip,
                    binding.action,
                )
            )
        return out

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and not self.FILTERABLE:
            return False
        return not (action in WRITE_ACTIONS and self.console.read_only)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state messages do not bubble: hand failures to the app's single reporting point.
        self.console.on_worker_state_changed(event)

    # -- shared actions ------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.console.go_back()

    def action_filter(self) -> None:
        if self.FILTERABLE:
            self.query_one(FilterBar).open()

    def set_status(self, text: Any) -> None:
        self.query_one(StatusBar).show(text)
