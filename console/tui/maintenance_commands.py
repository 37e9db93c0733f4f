"""`:maintenance` in the console: open, end and list maintenance windows, the store written in workers."""

from __future__ import annotations

import time

from textual import work
from textual.app import App

from mlops_console.tui.backend import Backend
from mlops_console.tui.messages import StoreChanged
from mlops_console.tui.text import clean, fmt_time


class MaintenanceCommands(App[int]):
    """The console app's maintenance-window commands (mixed into `MlopsConsole`)."""

    backend: Backend
    read_only: bool

    def maintenance_command(self, rest: str) -> None:
        """`:maintenance GLOB DURATION [REASON]` opens a window, `:maintenance end ID` ends one,
        `:maintenance` lists the running ones."""
        from mlops_console.config import parse_duration
        from mlops_console.core.limits import check_silence

        words = rest.split(maxsplit=2)
        if words and self.read_only:
            self.notify("read-only console: maintenance windows cannot be changed", severity="warning")
            return
        try:
            if not words:
                self._list_maintenance()
            elif words[0] == "end" and len(words) == 2:
                self._end_maintenance(int(words[1]))
            elif len(words) >= 2:
                seconds = check_silence(parse_duration(words[1]))
                self._start_maintenance(words[0], seconds, words[2] if len(words) == 3 else None)
            else:
                raise ValueError("usage: :maintenance GLOB DURATION [REASON] | :maintenance end ID")
        except ValueError as exc:
            self.notify(clean(str(exc), limit=100), severity="warning", markup=False)

    @work(thread=True, exit_on_error=False, group="maintenance")
    def _start_maintenance(self, pattern: str, seconds: float, reason: str | None) -> None:
        window = self.backend.store.start_maintenance(pattern, seconds, self.backend.actor, reason)
        text = f"maintenance #{window.id}: {window.pattern} quiet until {fmt_time(window.ends_at)}"
        self.call_from_thread(self.notify, clean(text, limit=120), markup=False)
        self.post_message(StoreChanged("alerts"))

    @work(thread=True, exit_on_error=False, group="maintenance")
    def _end_maintenance(self, window_id: int) -> None:
        try:
            window = self.backend.store.end_maintenance(window_id, self.backend.actor)
        except KeyError:
            text, severity = f"no maintenance window with id {window_id}", "warning"
        except ValueError as exc:
            text, severity = str(exc), "warning"
        else:
            text, severity = f"maintenance #{window.id} ({window.pattern}) ended", "information"
        self.call_from_thread(self.notify, clean(text, limit=120), severity=severity, markup=False)
        self.post_message(StoreChanged("alerts"))

    @work(thread=True, exit_on_error=False, group="maintenance")
    def _list_maintenance(self) -> None:
        windows = self.backend.store.maintenance_windows(time.time())
        lines = [
            f"#{w.id} {w.pattern} until {fmt_time(w.ends_at)} by {w.created_by}"
            + (f": {w.reason}" if w.reason else "")
            for w in windows
        ]
        text = "\n".join(clean(line, limit=120) for line in lines) or "no maintenance window running"
        self.call_from_thread(self.notify, text, title="maintenance", markup=False)
