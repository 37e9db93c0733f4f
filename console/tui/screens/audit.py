"""Audit: who did what, when (promotes, rollbacks, acks, silences), newest first, filterable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

from mlops_console.core.store import AuditEntry
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, fmt_time, safe_text
from mlops_console.tui.widgets.filter_bar import FilterBar

ACTIONS = ["all", "promote", "rollback", "deploy", "ack", "silence"]


class AuditScreen(ConsoleScreen):
    TITLE_TEXT = "Audit"
    HELP = (
        "The audit trail from the store, newest first: promotes, rollbacks, acknowledgements and "
        "silences, by whom, with their reason and result. `f` cycles the action filter, `/` filters "
        "by text."
    )
    POLL_SECONDS = 5.0
    BINDINGS = [
        Binding("f", "cycle_action", "Action", id="audit.action", tooltip="Cycle the action filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.table: DataTable = DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        self.shown_action = "all"
        """The action filter `f` cycles through (`self.action_filter` is the `/` binding's action)."""
        self.filter_text = ""
        self.rows: list[AuditEntry] = []
        self._shown: list[Any] | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield self.table

    def on_mount(self) -> None:
        for key, label, width in (
            ("at", "when", 14),
            ("actor", "who", 18),
            ("action", "action", 8),
            ("model", "model", 16),
            ("alias", "alias", 11),
            ("change", "change", 9),
            ("result", "result", 8),
            ("target", "endpoint/alert", 16),
            ("reason", "reason", 40),
        ):
            self.table.add_column(label, key=key, width=width)
        self.table.border_title = "audit: all"

    def focus_main(self) -> None:
        self.table.focus()

    def reload(self) -> None:
        self._load(self.shown_action)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audit-load")
    def _load(self, action: str) -> None:
        rows = self.console.backend.store.list_audit(action=None if action == "all" else action, limit=1000)
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[AuditEntry]) -> None:
        self.rows = rows
        self._draw()

    def _draw(self) -> None:
        rows = self.rows
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [
                r
                for r in rows
                if needle in " ".join(clean(v) for v in r.as_dict().values() if v is not None).lower()
            ]
        signature = [(r.id, r.result) for r in rows]
        if signature == self._shown:
            return
        self._shown = signature
        colors = self.console.theme_colors()
        now = self.console.clock()
        result_style = {
            "ok": colors["up"],
            "failed": colors["down"],
            "refused": colors["degraded"],
            "pending": colors["muted"],
        }
        with self.app.batch_update():
            self.table.clear()
            for row in rows:
                change = DASH
                if row.from_version or row.to_version:
                    change = f"{row.from_version or DASH}→{row.to_version or DASH}"
                target = row.endpoint or ""
                if row.alert_id:
                    target = f"{target} #{row.alert_id}".strip()
                self.table.add_row(
                    fmt_time(row.at, now),
                    safe_text(row.actor, limit=40),
                    safe_text(row.action),
                    safe_text(row.model or DASH, limit=40),
                    safe_text(row.alias or DASH, limit=30),
                    safe_text(change),
                    Text(clean(row.result), style=result_style.get(row.result, "")),
                    safe_text(target or DASH, limit=40),
                    safe_text(row.reason or "", limit=200),
                    key=str(row.id),
                )
        self.table.border_title = f"audit: {self.shown_action} ({len(rows)})"
        self.table.border_subtitle = "" if rows else "nothing recorded yet"

    def action_cycle_action(self) -> None:
        self.shown_action = ACTIONS[(ACTIONS.index(self.shown_action) + 1) % len(ACTIONS)]
        self.reload()

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.filter_text = event.text
        self._draw()
