"""Confirm a promote or rollback: model, alias, current → new, metrics diff, endpoints redeployed,
a required reason; then the deploy and verification progress, live."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, RichLog, Static

from mlops_console.tui.messages import StoreChanged
from mlops_console.tui.model_metrics import judge
from mlops_console.tui.text import DASH, clean, fmt_metric, safe_text


def open_change_dialog(
    screen: Screen,
    action: str,
    model: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    expect_current: str | None = None,
    reason: str = "",
) -> None:
    if getattr(screen.app, "read_only", False):
        screen.notify("read-only: promote and rollback are disabled", severity="warning")
        return
    screen.app.push_screen(
        ChangeDialog(
            action, model, alias=alias, version=version, expect_current=expect_current, reason=reason
        )
    )


def metrics_table(plan: Any, colors: dict[str, str]) -> Table:
    """Current and new version's metrics side by side; a metric that gets worse is red and says so."""
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    current = f"v{plan.current_version}" if plan.current_version else "unset"
    new = f"v{plan.new_version}" if plan.new_version else "?"
    table.add_column("metric")
    table.add_column(current, justify="right")
    table.add_column(new, justify="right")
    table.add_column("Δ", justify="right")
    table.add_column("")
    for name, old, value in plan.metric_rows()[:12]:
        delta = ""
        if isinstance(old, int | float) and isinstance(value, int | float):
            delta = f"{value - old:+.4g}"
        verdict = judge(name, old, value)
        style = {"worse": f"bold {colors['down']}", "better": colors["up"]}.get(verdict or "", "")
        table.add_row(
            safe_text(name, style if verdict == "worse" else "", limit=30),
            Text(fmt_metric(old) if old is not None else DASH),
            Text(fmt_metric(value) if value is not None else DASH, style=style),
            Text(delta, style=style),
            Text(f"({verdict})" if verdict in ("worse", "better") else "", style=style),
        )
    return table


class ChangeDialog(ModalScreen[Any]):
    """Dismisses with the ChangeResult, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="change.cancel", tooltip="Close (only before confirming)"),
    ]

    def __init__(
        self,
        action: str,
        model: str,
        *,
        alias: str | None = None,
        version: str | None = None,
        expect_current: str | None = None,
        reason: str = "",
    ) -> None:
        super().__init__()
        self.action = action
        self.model = model
        self.alias = alias
        self.version = version
        self.expect_current = expect_current
        self.initial_reason = reason
        self.plan: Any = None
        self.running = False
        self.result: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide") as box:
            box.border_title = safe_text(f"{self.action} {self.model}", limit=60)
            yield Static(Text("reading the registry…", style="dim"), id="plan")
            yield Static("", id="metrics")
            yield Label("reason (required), enter to confirm:", id="reason-label")
            yield Input(value=self.initial_reason, placeholder="why (goes to the audit trail)", id="reason")
            yield RichLog(id="progress", wrap=True, markup=False, max_lines=500)
            with Horizontal(classes="buttons"):
                yield Button(self.action.capitalize(), variant="error", id="confirm", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(RichLog).display = False
        self.query_one("#reason", Input).focus()
        self._plan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="change-plan")
    def _plan(self) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]
        try:
            plan = backend.plan(
                self.action,
                self.model,
                version=self.version,
                alias=self.alias,
                expect_current=self.expect_current,
            )
        except Exception as exc:
            self.app.call_from_thread(self._plan_failed, exc)
        else:
            self.app.call_from_thread(self._show_plan, plan)

    def _plan_failed(self, exc: Exception) -> None:
        """Nothing can be confirmed: offer only Close (a disabled button still reads as an offer)."""
        colors = self.app.theme_colors()  # type: ignore[attr-defined]
        self.query_one("#plan", Static).update(
            safe_text(f"cannot plan: {exc}", f"bold {colors['down']}", limit=400)
        )
        self._nothing_to_confirm()

    def _nothing_to_confirm(self) -> None:
        for selector in ("#confirm", "#reason", "#reason-label"):
            self.query_one(selector).display = False
        close = self.query_one("#cancel", Button)
        close.label = "Close"
        close.focus()

    def _show_plan(self, plan: Any) -> None:
        self.plan = plan
        colors = self.app.theme_colors()  # type: ignore[attr-defined]
        out = Text(end="")
        out.append("model    ")
        out.append_text(safe_text(plan.model, "bold", limit=80))
        out.append("\ntarget   ")
        out.append_text(safe_text(plan.target.label))
        out.append("\nversion  ")
        out.append(f"v{plan.current_version}" if plan.current_version else "unset")
        out.append("  →  ")
        out.append(f"v{plan.new_version}" if plan.new_version else "?", style="bold")
        out.append("\nredeploy ")
        out.append_text(safe_text(", ".join(plan.endpoints) or "no endpoint has a deploy hook", limit=200))
        if plan.not_redeployed:
            out.append("\nkeep old ")
            out.append_text(safe_text(", ".join(plan.not_redeployed), colors["degraded"], limit=200))
            out.append(" (no deploy hook)", style="dim")
        for problem in plan.problems:
            out.append("\n✖ ", style=colors["down"])
            out.append_text(safe_text(problem, colors["down"], limit=300))
        if plan.noop:
            out.append("\nalready in place: nothing to do", style="dim")
        self.query_one("#plan", Static).update(out)
        self.query_one("#metrics", Static).update(metrics_table(plan, colors) if plan.metric_rows() else "")
        if not plan.ok or plan.noop:
            self._nothing_to_confirm()
        self._update_confirm()

    def _update_confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        ready = (
            self.plan is not None
            and self.plan.ok
            and not self.plan.noop
            and bool(reason)
            and not self.running
        )
        self.query_one("#confirm", Button).disabled = not ready

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_confirm()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self._confirm()
        elif not event.value.strip():
            self.notify("a reason is required", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._confirm()
        elif self.running:
            self.notify("the change is in progress; wait for it to finish", severity="warning")
        else:
            self.dismiss(self.result)

    def _confirm(self) -> None:
        if self.running or self.plan is None or self.result is not None:
            return
        self.running = True
        self._update_confirm()
        self.query_one("#reason", Input).disabled = True
        log = self.query_one(RichLog)
        log.display = True
        log.write(Text(f"{self.action} {clean(self.model)} → v{self.plan.new_version} …"))
        self._apply(self.query_one("#reason", Input).value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False, group="change-apply")
    def _apply(self, reason: str) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]

        def progress(line: str) -> None:
            self.app.call_from_thread(self._progress, line)

        try:
            result = backend.apply(self.plan, reason, progress)
        except Exception as exc:
            self.app.call_from_thread(self._done, None, exc)
        else:
            self.app.call_from_thread(self._done, result, None)

    def _progress(self, line: str) -> None:
        self.query_one(RichLog).write(safe_text(line, multiline=True, limit=2000))

    def _done(self, result: Any, error: Exception | None) -> None:
        self.running = False
        self.result = result
        colors = self.app.theme_colors()  # type: ignore[attr-defined]
        log = self.query_one(RichLog)
        if error is not None:
            log.write(safe_text(f"✖ failed: {error}", colors["down"], limit=500))
        else:
            style = colors["up"] if result.ok else colors["down"]
            log.write(
                safe_text(("✔ " if result.ok else "✖ ") + result.message, style, multiline=True, limit=1000)
            )
            for warning in getattr(result, "warnings", []):
                log.write(safe_text(f"! {warning}", colors["degraded"], limit=500))
        self.query_one("#cancel", Button).label = "Close"
        self.query_one("#cancel", Button).focus()
        self.app.post_message(StoreChanged("registry"))

    def action_cancel(self) -> None:
        if self.running:
            self.notify("the change is in progress; wait for it to finish", severity="warning")
            return
        self.dismiss(self.result)
