"""The shift report (`:report [SPAN]`): the same text `mlops-console report` prints, read in a worker."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from mlops_console.config import parse_duration
from mlops_console.core.report import build_report, render_text
from mlops_console.tui.screens.base import ConsoleScreen

SPANS = ["1h", "4h", "12h", "24h", "7d"]
DEFAULT_SPAN = "12h"


def span_seconds(text: str) -> float:
    """ValueError unless `text` is a positive duration (`12h`, `30m`, `7d`)."""
    seconds = parse_duration(text)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"expected a positive duration such as 12h, got {text!r}")
    return seconds


class ReportScreen(ConsoleScreen):
    TITLE_TEXT = "Shift report"
    HELP = (
        "The shift report over the last span (default 12h): alerts fired and paged, time to acknowledge "
        "and to resolve, what is still open and who holds it, promotes, rollbacks and deploys, silences "
        "and maintenance windows still running. `[` and `]` shorten and lengthen the span, `:report 3h` "
        "picks any span, `r` reads it again."
    )
    FILTERABLE = False
    BINDINGS = [
        Binding("left_square_bracket", "span(-1)", "Shorter", id="report.shorter", tooltip="Shorter span"),
        Binding("right_square_bracket", "span(1)", "Longer", id="report.longer", tooltip="Longer span"),
        Binding("r", "refresh_report", "Refresh", id="report.refresh", tooltip="Read the report again"),
    ]

    def __init__(self, span: str = DEFAULT_SPAN) -> None:
        super().__init__()
        self.span = span
        self.seconds = span_seconds(span)
        self.body = Static(Text("reading the store..."), id="report-text")
        self.text = ""
        """The report as last shown (plain text, already escaped)."""

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="report"):
            yield self.body

    def on_mount(self) -> None:
        super().on_mount()
        self.reload()

    def focus_main(self) -> None:
        self.query_one("#report", VerticalScroll).focus()

    def reload(self) -> None:
        self.query_one("#report", VerticalScroll).border_title = f"shift report: last {self.span}"
        self._load(self.seconds)

    def set_span(self, span: str) -> None:
        self.seconds = span_seconds(span)
        self.span = span
        self.reload()

    def action_span(self, step: int) -> None:
        index = SPANS.index(self.span) if self.span in SPANS else SPANS.index(DEFAULT_SPAN)
        self.set_span(SPANS[max(0, min(len(SPANS) - 1, index + step))])

    def action_refresh_report(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="report-load")
    def _load(self, seconds: float) -> None:
        end = time.time()
        text = render_text(build_report(self.console.backend.store, end - seconds, end))
        self.app.call_from_thread(self._show, text)

    def _show(self, text: str) -> None:
        self.text = text
        # A Text, never markup: endpoint names, actors and reasons are shown as written (escaped).
        self.body.update(Text(text))
