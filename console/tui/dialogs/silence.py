"""Silence an alert for 15m / 1h / 4h / 24h. Dismisses with `Silence` or None."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from mlops_console.tui.dialogs.alert_action import AlertActionDialog, Silence

DURATIONS: list[tuple[str, float]] = [("15m", 900.0), ("1h", 3600.0), ("4h", 14400.0), ("24h", 86400.0)]


class SilenceDialog(AlertActionDialog[Silence]):
    VERB = "silence"
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

    def compose_question(self) -> Iterable[Widget]:
        yield Label("this alert and any recurrence stay quiet for:")
        yield OptionList(
            *(Option(f"{i + 1}  {label}", id=label) for i, (label, _) in enumerate(DURATIONS)),
            id="durations",
        )
        yield Input(placeholder="note (optional)", id="note")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    def action_choose(self, index: int) -> None:
        note = self.note()
        if note is not None:
            self.answer(Silence(DURATIONS[index][1], note or None))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_choose(event.option_index)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        self.action_choose(highlighted or 0)
