"""The `/` filter: a line at the bottom of a list screen; rows that do not contain the text hide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """Typing filters live; `enter` keeps the filter and returns to the table; `esc` clears it.

    With `apply_at_once`, the text is handed to it within the keystroke, as the bar's value changes,
    instead of in an `Applied` message: a message hop later, the bar's own echo had been painted in
    the screen's next frame already, and the filtered rows waited for the frame after it (Textual
    paints at most every 1/60 s), 17-20 ms of every such keystroke spent waiting.
    """

    BINDINGS = [
        Binding(
            "escape",
            "clear",
            "Clear filter",
            id="filter.clear",
            tooltip="Clear the filter and close",
            show=False,
        ),
    ]

    @dataclass
    class Applied(Message):
        """The filter text changed (empty: no filter)."""

        bar: FilterBar
        text: str

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FilterBar.Applied) and message.bar is self.bar

    def __init__(self, apply_at_once: Callable[[str], None] | None = None, **kwargs) -> None:
        self._typing = False
        self._apply_at_once = apply_at_once
        super().__init__(placeholder="/ filter (esc clears)", **kwargs)
        self.display = False

    def _watch_value(self, value: str) -> None:
        # Input lays the whole screen out again on every keystroke (its scrollable width follows the
        # text). This bar is one line as wide as the screen whatever it holds: repainting it is enough,
        # and a layout repainted every widget on screen, a tenth of a keystroke at 10,000 rows.
        self._typing = True
        try:
            super()._watch_value(value)
        finally:
            self._typing = False
        if self._apply_at_once is not None and self.is_mounted:
            self._apply_at_once(value.strip())

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        layout = layout and not self._typing
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def open(self) -> None:
        self.display = True
        # Focus now, not after a refresh: the keys typed after `:` are routed as soon as this returns.
        self.screen.set_focus(self)

    def action_clear(self) -> None:
        self.value = ""
        if self._apply_at_once is not None:
            # Not as a message: one handled after the next keystrokes would undo their filter.
            self._apply_at_once("")
        else:
            self.post_message(self.Applied(self, ""))
        self.display = False
        getattr(self.screen, "focus_main", self.screen.focus_next)()

    def _on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._apply_at_once is None:  # applied already otherwise, and this text may be stale by now
            self.post_message(self.Applied(self, event.value.strip()))

    def _on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.display = bool(self.value)
        getattr(self.screen, "focus_main", self.screen.focus_next)()
