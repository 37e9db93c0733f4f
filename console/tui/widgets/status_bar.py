"""The top line: endpoint and alert counts, registry and engine state, read-only badge."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    """Rendered by the app (`MlopsConsole.status_text()`); this widget only displays it."""

    DEFAULT_CLASSES = "status-bar"

    def show(self, text: Text) -> None:
        self.update(text)
