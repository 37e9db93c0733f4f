"""One alert's timeline: fired, notified (which channel, delivered or not), acked, silenced, resolved."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlops_console.core import formatting
from mlops_console.core.alerts.messages import runbook_of
from mlops_console.core.conditions.evidence import explain_evidence
from mlops_console.core.store import Alert, AlertEvent
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, fmt_time, safe_text

KIND_LABEL = {
    "fired": "▲ fired",
    "notified": "✉ notified",
    "notify_failed": "✉ delivery failed",
    "notify_gave_up": "✉ gave up",
    "acknowledged": "✓ acknowledged",
    "silenced": "◌ silenced",
    "resolved": "○ resolved",
    "flapping": "≈ flapping",
    "reminder": "⟳ reminder",
    "escalated": "⇡ escalated",
    "maintenance": "◌ in maintenance (not paged)",
    "maintenance_over": "✉ paged after maintenance",
}


class AlertTimelineScreen(ConsoleScreen):
    TITLE_TEXT = "Alert timeline"
    HELP = (
        "Every event of one alert, oldest first: when it fired, each notification attempt (channel and "
        "whether it was delivered), acknowledgements with their note, silences and resolution. "
        "`o` opens the alert's runbook (`runbook` on its `[[rules]]` or `[[endpoints]]` entry). "
        "`esc` goes back."
    )
    FILTERABLE = False
    POLL_SECONDS = 3.0
    BINDINGS = [
        Binding("o", "open_runbook", "Runbook", id="alerts.runbook", tooltip="Open the alert's runbook"),
    ]

    def __init__(self, alert_id: int) -> None:
        super().__init__()
        self.alert_id = alert_id
        self.runbook: str | None = None
        """The runbook of the alert shown, as stored with it (known once the alert has loaded)."""
        self.summary = Static(Text("loading…", style="dim"), id="alert-summary")
        self.table: DataTable = DataTable(id="timeline", cursor_type="row", zebra_stripes=True)

    def compose_body(self) -> Iterable[Widget]:
        yield self.summary
        yield self.table

    def on_mount(self) -> None:
        for key, label, width in (
            ("at", "when", 14),
            ("kind", "event", 18),
            ("who", "by / channel", 28),
            ("detail", "detail", 60),
        ):
            self.table.add_column(label, key=key, width=width)
        self.table.border_title = f"alert #{self.alert_id}"

    def focus_main(self) -> None:
        self.table.focus()

    def reload(self) -> None:
        self._load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_runbook" and not self.runbook:
            return False
        return super().check_action(action, parameters)

    def action_open_runbook(self) -> None:
        if self.runbook:
            self.app.open_url(self.runbook)
            self.notify(f"opening {clean(self.runbook)}", markup=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="timeline-load")
    def _load(self) -> None:
        store = self.console.backend.store
        alert = store.get_alert(self.alert_id)
        events = store.events(self.alert_id)
        self.app.call_from_thread(self._show, alert, events)

    def _show(self, alert: Alert, events: list[AlertEvent]) -> None:
        colors = self.console.theme_colors()
        now = self.console.clock()
        head = Text(end="")
        head.append(f"#{alert.id} ", style="bold")
        head.append_text(safe_text(alert.display_state, "bold"))
        head.append("  ")
        head.append_text(safe_text(f"{alert.severity} · {alert.rule} · {alert.endpoint}", limit=120))
        if alert.model:
            head.append_text(safe_text(f" · {alert.model} v{alert.version or '?'}", limit=80))
        head.append("\n")
        head.append_text(safe_text(alert.summary, limit=400))
        evidence = next(
            (e.data["evidence"] for e in events if e.kind == "fired" and e.data and e.data.get("evidence")),
            None,
        )
        if isinstance(evidence, dict):
            # Why a detector fired it: the value against the band it expected, and how far out it was.
            head.append("\nwhy: ", style="bold")
            head.append_text(safe_text(explain_evidence(evidence), limit=300))
        elif alert.value is not None:
            head.append(f"\nvalue {alert.value:.4g}")
            if alert.threshold is not None:
                head.append(f" (threshold {alert.threshold:.4g})")
        head.append(
            f"\nstarted {fmt_time(alert.started_at, now)} ({formatting.age(alert.started_at, now)} ago)"
        )
        if alert.ack_note:
            head.append("  note: ")
            head.append_text(safe_text(alert.ack_note, limit=200))
        self.runbook = runbook_of(self.console.settings, alert)
        self.refresh_bindings()  # `o Runbook` is offered only for an alert that has one
        if self.runbook:
            head.append("\nrunbook: ", style="bold")
            head.append_text(safe_text(self.runbook, limit=300))
            head.append("  (o opens it)", style="dim")
        self.summary.update(head)
        bad = {
            "notify_failed": colors["degraded"],
            "notify_gave_up": colors["down"],
            "fired": colors["down"],
            "resolved": colors["up"],
            "acknowledged": colors["degraded"],
        }
        with self.app.batch_update():
            self.table.clear()
            for event in events:
                kind = event.kind
                detail = clean(event.note or "")
                data = event.data or {}
                if kind == "silenced" and data.get("until"):
                    detail = f"until {fmt_time(data['until'], now)}" + (f" · {detail}" if detail else "")
                elif kind in ("notified", "notify_failed", "notify_gave_up"):
                    attempt = data.get("attempt")
                    what = data.get("kind") or ""
                    delivered = "delivered" if kind == "notified" else "not delivered"
                    detail = (
                        f"{what} {delivered}"
                        + (f", attempt {attempt}" if attempt else "")
                        + (f": {detail}" if detail else "")
                    )
                elif kind == "fired" and isinstance(data.get("evidence"), dict):
                    detail = explain_evidence(data["evidence"])
                elif kind == "fired" and data.get("value") is not None:
                    detail = f"value {data['value']:.4g}"
                self.table.add_row(
                    fmt_time(event.at, now),
                    Text(KIND_LABEL.get(kind, clean(kind)), style=bad.get(kind, "")),
                    safe_text(event.actor or DASH, limit=60),
                    safe_text(detail, limit=300),
                    key=str(event.id),
                )
