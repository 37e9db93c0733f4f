"""Where the console's keys and `:` commands lead: an endpoint's detail and quality views, the report,
help, the modes, and the demo's chaos controls (mixed into `MlopsConsole`)."""

from __future__ import annotations

from typing import Any

from textual import work

from mlops_console.config import Settings
from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.tui.maintenance_commands import MaintenanceCommands
from mlops_console.tui.text import clean
from mlops_console.tui.widgets.command_bar import CommandBar, resolve


class ConsoleNavigation(MaintenanceCommands):
    """The console's navigation: screens reached by name or key."""

    settings: Settings
    snapshot: EngineSnapshot | None
    demo: Any

    def endpoint_names(self) -> list[str]:
        if self.snapshot is not None:
            return [e.name for e in self.snapshot.endpoints]
        return [e.name for e in self.settings.endpoints]

    def go_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "overview":
            self.switch_mode("overview")

    def open_endpoint(self, name: str) -> None:
        from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen

        if name not in self.endpoint_names():
            self.notify(clean(f"no endpoint named {name!r}", limit=120), severity="warning", markup=False)
            return
        if self.current_mode != "overview":
            self.switch_mode("overview")
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(EndpointDetailScreen(name))

    def open_quality(self, name: str) -> None:
        """The model-quality view of an endpoint (over its detail screen, so `esc` leads there)."""
        from mlops_console.tui.screens.quality import QualityScreen

        if name not in self.endpoint_names():
            self.notify(clean(f"no endpoint named {name!r}", limit=120), severity="warning", markup=False)
            return
        self.open_endpoint(name)
        self.push_screen(QualityScreen(name))

    @work(thread=True, exit_on_error=False, group="demo")
    def demo_chaos(self, method: str, endpoint: str, *args: Any) -> None:
        """Run one of the demo environment's chaos controls (kill, restart, slow, fail, heal)."""
        getattr(self.demo, method)(endpoint, *args)
        self.call_from_thread(self.notify, clean(f"chaos: {method} {endpoint}", limit=80), markup=False)

    def open_report(self, span: str) -> None:
        from mlops_console.tui.screens.report import DEFAULT_SPAN, ReportScreen

        try:
            if isinstance(self.screen, ReportScreen):
                self.screen.set_span(span or self.screen.span)
            else:
                self.push_screen(ReportScreen(span or DEFAULT_SPAN))
        except ValueError as exc:
            self.notify(clean(str(exc), limit=100), severity="warning", markup=False)

    def action_command_bar(self) -> None:
        for bar in self.screen.query(CommandBar):
            bar.open()

    def action_help(self) -> None:
        from mlops_console.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def run_console_command(self, text: str) -> None:
        word, _, rest = text.strip().partition(" ")
        command = resolve(word)
        if command == "quit":
            self.exit(0)
        elif command == "help":
            self.action_help()
        elif command == "endpoint" or (command == "overview" and rest):
            if rest.strip():
                self.open_endpoint(rest.strip())
            else:
                self.switch_mode("overview")
        elif command == "report":
            self.open_report(rest.strip())
        elif command == "maintenance":
            self.maintenance_command(rest.strip())
        elif command == "drift":
            if rest.strip():
                self.open_quality(rest.strip())
            else:
                self.notify("usage: :drift ENDPOINT", severity="warning", markup=False)
        elif command in self.MODES:
            if self.current_mode == command:
                while len(self.screen_stack) > 1:
                    self.pop_screen()
            else:
                self.switch_mode(command)
        else:
            self.notify(
                clean(f"unknown command: {text}", limit=80)
                + " (try :alerts :models :pipelines :audit :drift NAME :q)",
                severity="warning",
                markup=False,
            )
