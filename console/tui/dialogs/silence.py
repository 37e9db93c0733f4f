"""Silence an alert for 15m / 1h / 4h / 24h. Dismisses with (seconds, note) or None."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from mlops_console.core.limits import check_text
from mlops_console.tui.text import join, safe_text

DURATIONS: list[tuple[str, float]] = [("15m", 900.0), ("1h", 3600.0), ("4h", 14400.0), ("24h", 86400.0)]


class SilenceDialog(ModalScreen[tuple[float, str] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="silence.cancel", tooltip="Close without silencing"),
        *(
            Binding(
                str(i + 1),
                f"choose({i})",
                label,
                id=f"silence.{label}",
                tooltip=f"Silence for {label}",
                show=False,
            )
            for i, (label, _) in enumerate(DURATIONS)
        ),
    ]

    def __init__(self, alert: dict[str, Any]) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        with Vertical(classes="dialog") as box:
            box.border_title = f"silence alert #{alert['id']}"
            yield Static(
                join(
                    [
                        safe_text(alert.get("endpoint"), "bold"),
                        safe_text(alert.get("rule")),
                        safe_text(alert.get("summary"), limit=200),
                    ],
                    " · ",
                )
            )
            yield Label("this alert and any recurrence stay quiet for:")
            yield OptionList(
                *(Option(f"{i + 1}  {label}", id=label) for i, (label, _) in enumerate(DURATIONS)),
                id="durations",
            )
            yield Input(placeholder="note (optional)", id="note")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    def _note(self) -> str:
        return self.query_one("#note", Input).value.strip()

    def action_choose(self, index: int) -> None:
        note = self._note()
        try:
            check_text(note, "the note")
        except ValueError as exc:  # stay open: the note is still there to shorten
            self.notify(str(exc), severity="error", markup=False)
            return
        self.dismiss((DURATIONS[index][1], note))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_choose(event.option_index)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        self.action_choose(highlighted or 0)

    def action_cancel(self) -> None:
        self.dismiss(None)
