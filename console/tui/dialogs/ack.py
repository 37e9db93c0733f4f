"""Acknowledge an alert, with an optional note. Dismisses with the note ("" for none) or None."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from mlops_console.core.limits import check_text
from mlops_console.tui.text import join, safe_text


class AckDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ack.cancel", tooltip="Close without acknowledging")]

    def __init__(self, alert: dict[str, Any]) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        with Vertical(classes="dialog") as box:
            box.border_title = f"acknowledge alert #{alert['id']}"
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
            yield Label("note (optional), enter to acknowledge, esc to cancel")
            yield Input(placeholder="e.g. looking into it, rolling back", id="note")
            with Horizontal(classes="buttons"):
                yield Button("Acknowledge", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._acknowledge()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._acknowledge()
        else:
            self.dismiss(None)

    def _acknowledge(self) -> None:
        note = self.query_one("#note", Input).value.strip()
        try:
            check_text(note, "the note")
        except ValueError as exc:  # stay open: the note is still there to shorten
            self.notify(str(exc), severity="error", markup=False)
            return
        self.dismiss(note)

    def action_cancel(self) -> None:
        self.dismiss(None)
