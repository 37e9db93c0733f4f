"""Acknowledge an alert, with an optional note. Dismisses with `Acknowledge` or None."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Input, Label

from mlops_console.tui.dialogs.alert_action import Acknowledge, AlertActionDialog


class AckDialog(AlertActionDialog[Acknowledge]):
    VERB = "acknowledge"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ack.cancel", tooltip="Close without acknowledging")]

    def compose_question(self) -> Iterable[Widget]:
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
        note = self.note()
        if note is not None:
            self.answer(Acknowledge(note or None))
