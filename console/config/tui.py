"""`[tui]`: the console's own preferences (key bindings)."""

from __future__ import annotations

from mlops_console.config.values import Section


class TuiSettings(Section):
    keymap: dict[str, str] = {}
    """Binding id to keys, e.g. `{ "alerts.ack" = "A" }`."""
