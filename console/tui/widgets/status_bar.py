"""The top line: endpoint and alert counts, registry and engine state, read-only badge."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def rows_needed(text: Text, width: int) -> int:
    width = max(width, 1)
    return sum(max(1, -(-len(line) // width)) for line in text.plain.split("\n"))


class StatusBar(Static):
    """Rendered by the app (`MlopsConsole.status_text()`); this widget only displays it."""

    DEFAULT_CLASSES = "status-bar"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: Text | None = None
        self._rows = 0

    def show(self, text: Text) -> None:
        """Update only when the text changed; relayout only when its height did (cheap at 1 Hz)."""
        if text == self._shown:
            return
        rows = rows_needed(text, self.size.width)
        self.update(text, layout=rows != self._rows)
        self._shown, self._rows = text, rows

    def on_resize(self) -> None:
        if self._shown is not None:
            self._rows = rows_needed(self._shown, self.size.width)
            self.refresh(layout=True)
