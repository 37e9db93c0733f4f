"""The confirmation skeleton every alert dialog shares, and the typed answers they return.

A dialog shows which alert it acts on, asks its own question (`compose_question`), takes an optional
note, and dismisses with an answer (`Acknowledge`, `Silence`) or None when cancelled. A note longer
than the store accepts keeps the dialog open with the note still there to shorten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Static

from mlops_console.core.limits import check_text
from mlops_console.core.store import Alert
from mlops_console.tui.text import join, safe_text


@dataclass(frozen=True)
class Acknowledge:
    """Acknowledge the alert, with an optional note."""

    note: str | None


@dataclass(frozen=True)
class Silence:
    """Silence the alert (and its recurrences) for `seconds`, with an optional note."""

    seconds: float
    note: str | None


Answer = TypeVar("Answer", Acknowledge, Silence)


class AlertActionDialog(ModalScreen[Answer | None], Generic[Answer]):
    """Subclasses set `VERB`, yield their question from `compose_question()` and call `answer()`."""

    VERB = ""
    """`acknowledge`, `silence`: the dialog's title says what it does. Subclasses bind `escape` to
    `cancel` with their own binding id."""

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        with Vertical(classes="dialog") as box:
            box.border_title = f"{self.VERB} alert #{alert.id}"
            yield Static(
                join(
                    [
                        safe_text(alert.endpoint, "bold"),
                        safe_text(alert.rule),
                        safe_text(alert.summary, limit=200),
                    ],
                    " · ",
                )
            )
            yield from self.compose_question()

    def compose_question(self) -> Iterable[Widget]:
        return ()

    def note(self) -> str | None:
        """The note as typed, or None if it is longer than the store accepts (the user is told)."""
        note = self.query_one("#note", Input).value.strip()
        try:
            check_text(note, "the note")
        except ValueError as exc:  # stay open: the note is still there to shorten
            self.notify(str(exc), severity="error", markup=False)
            return None
        return note

    def answer(self, answer: Answer) -> None:
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)
