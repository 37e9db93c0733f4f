"""Alerts: firing, acknowledged, silenced and resolved, newest first; ack, silence, timeline."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

from mlops_console.core import formatting
from mlops_console.core.store import Alert, AuditEntry
from mlops_console.tui.dialogs.alert_action import Acknowledge, Silence
from mlops_console.tui.messages import StoreChanged
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, safe_text
from mlops_console.tui.widgets.filter_bar import FilterBar

STATES = ["all", "open", "firing", "acknowledged", "silenced", "resolved"]
STATE_SYMBOL = {
    "firing": "▲ firing",
    "acknowledged": "✓ acked",
    "silenced": "◌ silenced",
    "resolved": "○ resolved",
}
CHANGE_WINDOW = 15 * 60  # an alert this soon after a promote/rollback of its model shows that change
LIMIT = 500


def recent_change(alert: Alert, changes: list[AuditEntry]) -> AuditEntry | None:
    """The promote/rollback of the alert's model that happened at most 15 min before it fired."""
    if not alert.model:
        return None
    for change in changes:  # newest first
        delta = alert.started_at - change.at
        if change.model == alert.model and 0 <= delta <= CHANGE_WINDOW and change.result != "failed":
            return change
    return None


class AlertsScreen(ConsoleScreen):
    TITLE_TEXT = "Alerts"
    HELP = (
        "Alerts newest first. `f` cycles the state filter (all, open, firing, acknowledged, silenced, "
        "resolved); `/` filters by text. `a` acknowledges (with a note), `s` silences for 15m\u201324h, "
        "`enter` shows the alert's timeline. An alert that fired within 15 minutes after a promote or "
        "rollback of its model shows that change; `R` offers to roll it back. `C` cancels the pending "
        "automatic rollback of the alert's model (its promote under watch stays, whatever fires)."
    )
    POLL_SECONDS = 3.0

    BINDINGS = [
        Binding("a", "ack", "Ack", id="alerts.ack", tooltip="Acknowledge the selected alert"),
        Binding("s", "silence", "Silence", id="alerts.silence", tooltip="Silence the selected alert"),
        Binding("enter", "timeline", "Timeline", id="alerts.timeline", tooltip="Every event of this alert"),
        Binding("f", "cycle_state", "State", id="alerts.state", tooltip="Cycle the state filter"),
        Binding(
            "R",
            "rollback_change",
            "Roll back change",
            id="alerts.rollback",
            tooltip="Roll back the promote/rollback that preceded this alert",
        ),
        Binding(
            "C",
            "cancel_auto",
            "Cancel auto-rollback",
            id="alerts.cancel_auto",
            tooltip="Cancel the pending automatic rollback of this alert's model",
            show=False,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.table: DataTable = DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
        self.state = "all"
        self.filter_text = ""
        self.alerts: list[Alert] = []
        self.changes: list[AuditEntry] = []
        self.maintenance: dict[int, int] = {}
        """Alert id -> the running maintenance window over its endpoint."""
        self._shown: list[tuple[Any, ...]] | None = None
        self.loaded = False

    def compose_body(self) -> Iterable[Widget]:
        yield self.table

    # key, label, width, shown at narrow widths
    COLUMNS = (
        ("state", "state", 11, True),
        ("sev", "sev", 8, False),
        ("id", "#", 4, True),
        ("endpoint", "endpoint", 18, True),
        ("rule", "rule", 14, False),
        ("summary", "summary", 36, True),
        ("age", "started", 7, True),
        ("who", "ack/silence", 18, False),
        ("change", "after change", 22, False),
    )
    NARROW_BELOW = 120

    def on_mount(self) -> None:
        self.narrow: bool | None = None
        self._ensure_columns()
        self.table.border_title = "alerts: all"

    def on_resize(self) -> None:
        if self._ensure_columns():
            self._shown = None
            self._draw()

    def _ensure_columns(self) -> bool:
        narrow = bool(self.size.width) and self.size.width < self.NARROW_BELOW
        if narrow == self.narrow:
            return False
        self.narrow = narrow
        self.table.clear(columns=True)
        for key, label, width, in_narrow in self.COLUMNS:
            if in_narrow or not narrow:
                width = 26 if narrow and key == "summary" else width
                self.table.add_column(label, key=key, width=width)
        return True

    def focus_main(self) -> None:
        self.table.focus()

    def reload(self) -> None:
        self._load(self.state)

    @work(thread=True, exclusive=True, exit_on_error=False, group="alerts-load")
    def _load(self, state: str) -> None:
        store = self.console.backend.store
        alerts = store.list_alerts(state, limit=LIMIT)
        changes = [row for row in store.list_audit(limit=200) if row.action in ("promote", "rollback")]
        # Open alerts of endpoints under a running maintenance window: shown, not paged.
        windows = store.maintenance_windows(time.time())
        covered = {
            a.id: w.id
            for a in alerts
            if windows and a.state != "resolved" and (w := store.in_maintenance(a.endpoint))
        }
        self.app.call_from_thread(self._show, alerts, changes, covered)

    def _show(self, alerts: list[Alert], changes: list[AuditEntry], covered: dict[int, int]) -> None:
        self.alerts, self.changes, self.maintenance, self.loaded = alerts, changes, covered, True
        self._draw()

    def _visible(self) -> list[Alert]:
        if not self.filter_text:
            return self.alerts
        needle = self.filter_text.lower()
        fields = ("endpoint", "rule", "summary", "model", "severity", "display_state", "acked_by", "ack_note")
        return [a for a in self.alerts if needle in " ".join(clean(getattr(a, f)) for f in fields).lower()]

    def _draw(self) -> None:
        now = self.console.clock()
        colors = self.console.theme_colors()
        rows = self._visible()
        # The ages as shown are part of the signature: a "31s" must not stand still for a minute.
        signature = [
            (
                a.id,
                a.display_state,
                a.acked_by,
                formatting.age(a.started_at, now),
                formatting.age(now, a.silenced_until or now) if a.display_state == "silenced" else "",
                self.maintenance.get(a.id),
            )
            for a in rows
        ]
        if signature == self._shown:
            return
        self._shown = signature
        selected = self.selected_alert()
        state_style = {
            "firing": f"bold {colors['down']}",
            "acknowledged": colors["degraded"],
            "silenced": colors["muted"],
            "resolved": colors["up"],
        }
        with self.app.batch_update():
            self.table.clear()
            for alert in rows:
                display = alert.display_state
                change = recent_change(alert, self.changes)
                who = DASH
                if display == "silenced":
                    who = f"until {formatting.age(now, alert.silenced_until or now)}"
                elif alert.acked_by:
                    who = f"{alert.acked_by}"
                elif alert.id in self.maintenance:
                    who = f"maintenance #{self.maintenance[alert.id]}"
                change_text = Text(end="")
                if change:
                    change_text = safe_text(
                        f"{change.action} v{change.from_version or '?'}"
                        f"→v{change.to_version or '?'} "
                        f"{formatting.age(change.at, alert.started_at)} before",
                        colors["degraded"],
                        limit=40,
                    )
                sev = alert.severity
                cells = {
                    "state": Text(STATE_SYMBOL.get(display, display), style=state_style.get(display, "")),
                    "sev": safe_text(sev, colors["down"] if sev == "critical" else ""),
                    "id": str(alert.id),
                    "endpoint": safe_text(alert.endpoint, limit=40),
                    "rule": safe_text(alert.rule, limit=30),
                    "summary": safe_text(alert.summary, limit=200),
                    "age": formatting.age(alert.started_at, now),
                    "who": safe_text(who, limit=40),
                    "change": change_text,
                }
                self.table.add_row(*(cells[str(c.value)] for c in self.table.columns), key=str(alert.id))
            if selected is not None and str(selected) in self.table.rows:
                self.table.move_cursor(row=self.table.get_row_index(str(selected)), animate=False)
        total = len(self.alerts)
        self.table.border_title = f"alerts: {self.state} ({len(rows)}" + (
            f" of {total})" if self.filter_text else ")"
        )
        self.table.border_subtitle = "" if rows else "no alerts"

    def selected_alert(self) -> int | None:
        if not self.table.row_count:
            return None
        try:
            row_key, _ = self.table.coordinate_to_cell_key(self.table.cursor_coordinate)
        except Exception:
            return None
        return int(row_key.value) if row_key.value else None

    def _selected(self) -> Alert | None:
        alert_id = self.selected_alert()
        return next((a for a in self.alerts if a.id == alert_id), None)

    # -- actions ---------------------------------------------------------------------------------
    def action_cycle_state(self) -> None:
        self.state = STATES[(STATES.index(self.state) + 1) % len(STATES)]
        self.table.border_title = f"alerts: {self.state} …"
        self.reload()

    def set_state(self, state: str) -> None:
        self.state = state
        self.reload()

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.filter_text = event.text
        self._draw()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_timeline()

    def action_timeline(self) -> None:
        alert = self._selected()
        if alert:
            from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen

            self.app.push_screen(AlertTimelineScreen(alert.id))

    def action_ack(self) -> None:
        from mlops_console.tui.dialogs.ack import AckDialog

        alert = self._selected()
        if alert is None:
            return
        if alert.state == "resolved":
            self.notify("resolved alerts need no acknowledgement", severity="warning")
            return

        def done(answer: Acknowledge | None) -> None:
            if answer is not None:
                self._acknowledge(alert.id, answer.note)

        self.app.push_screen(AckDialog(alert), done)

    @work(thread=True, exit_on_error=False, group="alerts-write")
    def _acknowledge(self, alert_id: int, note: str | None) -> None:
        backend = self.console.backend
        backend.store.acknowledge(alert_id, by=backend.actor, note=note)
        self.app.call_from_thread(self.notify, f"alert #{alert_id} acknowledged")
        self.app.post_message(StoreChanged("alerts"))

    def action_silence(self) -> None:
        from mlops_console.tui.dialogs.silence import SilenceDialog

        alert = self._selected()
        if alert is None:
            return
        if alert.state == "resolved":
            self.notify("the alert is resolved; nothing to silence", severity="warning")
            return

        def done(answer: Silence | None) -> None:
            if answer is not None:
                self._silence(alert.id, answer.seconds, answer.note)

        self.app.push_screen(SilenceDialog(alert), done)

    @work(thread=True, exit_on_error=False, group="alerts-write")
    def _silence(self, alert_id: int, seconds: float, note: str | None) -> None:
        backend = self.console.backend
        backend.store.silence(alert_id, seconds, by=backend.actor, note=note)
        self.app.call_from_thread(self.notify, f"alert #{alert_id} silenced")
        self.app.post_message(StoreChanged("alerts"))

    def action_rollback_change(self) -> None:
        alert = self._selected()
        change = recent_change(alert, self.changes) if alert else None
        if alert is None or change is None or change.model is None:
            self.notify(
                "no promote or rollback of this model in the 15 minutes before this alert", severity="warning"
            )
            return
        from mlops_console.tui.dialogs.confirm_change import open_change_dialog

        open_change_dialog(
            self,
            "rollback",
            change.model,
            alias=change.alias,
            version=change.from_version,
            reason=f"alert #{alert.id} fired after {change.action}",
        )

    def action_cancel_auto(self) -> None:
        alert = self._selected()
        if alert is None or not alert.model:
            self.notify("this alert names no model", severity="warning")
            return
        if not any(c.model == alert.model for c in self.console.settings.auto_rollback):
            self.notify(clean(f"no automatic rollback is configured for {alert.model}"), severity="warning")
            return
        self._cancel_auto(alert.model, alert.id)

    @work(thread=True, exit_on_error=False, group="alerts-write")
    def _cancel_auto(self, model: str, alert_id: int) -> None:
        from mlops_console.core.auto_rollback import cancel

        backend = self.console.backend
        window, decision, audit_id = cancel(
            self.console.settings,
            backend.store,
            model,
            alias=None,
            actor=backend.actor,
            reason=f"cancelled from alert #{alert_id}",
        )
        if window is None:
            message, severity = f"no promote of {model} is under watch: nothing to cancel", "warning"
        elif audit_id is None:
            state = decision.state if decision else "decided"
            message, severity = f"the automatic rollback of {model} was already decided: {state}", "warning"
        else:
            message = f"automatic rollback of {model} v{window.promote.to_version} cancelled"
            severity = "information"
        self.app.call_from_thread(self.notify, clean(message, limit=120), severity=severity, markup=False)
        self.app.post_message(StoreChanged("audit"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action == "rollback_change":
            alert = self._selected()
            return True if alert and recent_change(alert, self.changes) else None
        return allowed

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()
