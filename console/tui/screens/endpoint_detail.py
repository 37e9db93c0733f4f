"""Endpoint detail: latency and throughput charts, error ratio, recent probe errors, alert history,
the served version and its run metrics, and the deploy history from the audit trail."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlops_console.core import formatting
from mlops_console.core.series import RPS_STEP
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.core.store import Alert, AuditEntry, Rollup
from mlops_console.tui import detail_charts as charts
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, firing_and_pending, fmt_time, safe_text, version_record
from mlops_console.tui.widgets.charts import SeriesChart


class EndpointDetailScreen(ConsoleScreen):
    TITLE_TEXT = "Endpoint"
    HELP = (
        "One endpoint in depth. Charts show per-minute p50/p95/p99 latency (ms), throughput (req/s) and "
        "the share of failed requests (%) from the store's history: the last hour per minute, `h` switches "
        "to the last day (10-minute points) and week (hourly points, means of the minutes' percentiles); "
        "the recent probes while the last hour has under five minutes of history. Dotted lines show the "
        "detectors' expected band (latency up to, throughput between). While the endpoint is down its "
        "percentiles are marked stale. "
        "Below: recent probe errors with their response text, this endpoint's alerts, the model version "
        "it serves with its run metrics, and the promote/rollback history of its model. `d` opens its model "
        "quality (drift, invalid and stuck predictions) when it has an inference log. `esc` goes back."
    )
    FILTERABLE = False
    POLL_SECONDS = 10.0
    BINDINGS = [
        Binding(
            "h", "history_view", "Hour/day/week", id="endpoint.history", tooltip="History: hour, day, week"
        ),
        Binding(
            "d", "drift", "Quality", id="endpoint.drift", tooltip="Model quality: drift, invalid predictions"
        ),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.endpoint_name = name
        self.summary = Static(Text("waiting for the engine…", style="dim"), id="ep-summary")
        self.latency_chart = SeriesChart("latency, ms", "ms", id="latency-chart", classes="chart")
        self.traffic_chart = SeriesChart(
            "throughput, req/s · errors, % of requests",
            "req/s",
            "errors %",
            id="traffic-chart",
            classes="chart",
        )
        self.errors = Static("", id="ep-errors", classes="panel")
        self.version_panel = Static(
            Text("model version: loading…", style="dim"), id="ep-version", classes="panel"
        )
        self.alerts_table: DataTable = DataTable(id="ep-alerts", cursor_type="row")
        self.deploys_table: DataTable = DataTable(id="ep-deploys", cursor_type="row")
        self.rollups: tuple[Rollup, ...] = ()
        self.history_from = ""
        """Where `rollups` come from: `from Prometheus`, why Prometheus could not say, or "" (the store)."""
        self.view = 0
        """Index into charts.VIEWS of the history the charts show."""
        self._chart_token = threading.Event()
        """Set when the charts' read in flight is superseded (a newer view asked for, the screen gone)."""
        self._version_key: tuple[str | None, str | None] | None = None

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="ep-body"):
            yield self.summary
            with Horizontal(id="ep-charts"):
                yield self.latency_chart
                yield self.traffic_chart
            with Horizontal(id="ep-panels"):
                yield self.errors
                yield self.version_panel
            with Horizontal(id="ep-tables"):
                yield self.alerts_table
                yield self.deploys_table

    def on_mount(self) -> None:
        self.errors.border_title = "recent probe errors"
        self.version_panel.border_title = "served model version"
        for key, label, width in (
            ("at", "started", 14),
            ("state", "state", 10),
            ("rule", "rule", 14),
            ("summary", "summary", 30),
        ):
            self.alerts_table.add_column(label, key=key, width=width)
        self.alerts_table.border_title = "alerts"
        for key, label, width in (
            ("at", "when", 14),
            ("action", "action", 8),
            ("change", "change", 8),
            ("actor", "who", 14),
            ("result", "result", 8),
            ("reason", "reason", 24),
        ):
            self.deploys_table.add_column(label, key=key, width=width)
        self.deploys_table.border_title = "deploy history"

    def focus_main(self) -> None:
        self.alerts_table.focus()

    def action_history_view(self) -> None:
        self.view = (self.view + 1) % len(charts.VIEWS)
        self._load_store()

    def action_drift(self) -> None:
        from mlops_console.tui.screens.quality import QualityScreen

        self.console.push_screen(QualityScreen(self.endpoint_name))

    def _endpoint(self, snapshot: EngineSnapshot | None) -> EndpointSnapshot | None:
        if snapshot is None:
            return None
        return next((e for e in snapshot.endpoints if e.name == self.endpoint_name), None)

    # -- live part: from the snapshot ----------------------------------------------------------------
    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        e = self._endpoint(snapshot)
        if e is None:
            self.summary.update(
                safe_text(f"endpoint {self.endpoint_name} is not in the current snapshot", "bold")
            )
            return
        app = self.console
        colors = app.theme_colors()
        now = app.clock()
        out = Text(end="")
        out.append_text(app.endpoint_health_text(e))
        out.append("  ")
        out.append_text(safe_text(e.name, "bold", limit=80))
        out.append("  ")
        out.append_text(safe_text(e.url, limit=120))
        out.append("  ")
        out.append_text(safe_text(f"[{e.adapter}]", "dim"))
        out.append("\nmodel ")
        out.append_text(safe_text(f"{e.model}@{e.alias}" if e.model else DASH, limit=80))
        out.append("   want ")
        out.append_text(safe_text(f"v{e.expected_version}" if e.expected_version else DASH))
        out.append("  serves ")
        out.append_text(
            safe_text(
                f"v{e.served_version}" if e.served_version else "unknown",
                f"bold reverse {colors['degraded']}" if e.version_mismatch else "",
            )
        )
        if e.version_mismatch:
            out.append("  version mismatch", style=f"bold {colors['degraded']}")
        latency = "  ".join(
            f"{name} {formatting.latency(value)}"
            for name, value in (("p50", e.p50), ("p95", e.p95), ("p99", e.p99))
        )
        if e.health == "down" and e.latency_source != "none":
            out.append("\nlatency ")
            out.append("stale", style=f"bold {colors['down']}")
            out.append(f" (from before it went down, {e.latency_source}) ")
            out.append(latency, style="dim")
        elif e.stale:
            out.append("\nlatency ")
            out.append("stale", style=f"bold {colors['degraded']}")
            out.append_text(safe_text(f" ({e.stale}) ", limit=160))
            out.append(latency, style="dim")
        else:
            out.append(f"\n{latency}  ({e.latency_source})")
        out.append(f"   {formatting.rate(e.rps)} (5m {formatting.rate(e.rps_5m)})   errors ")
        out.append(
            formatting.ratio(e.error_ratio), style=colors["down"] if (e.error_ratio or 0) >= 0.05 else ""
        )
        out.append(
            f"   last ok {formatting.age(e.last_ok_at, now)}{' ago' if e.last_ok_at else ''}"
            + (" · health from Prometheus up{} · readings" if e.health_source != "probe" else " · probes")
            + f" {e.probes}, failed {e.failures}, {e.consecutive_failures} in a row"
        )
        firing, pending = firing_and_pending(e.firing)
        if firing:
            out.append("\nfiring: ", style=f"bold {colors['down']}")
            out.append_text(safe_text(", ".join(firing), colors["down"], limit=200))
        if pending:
            out.append("\npending: ", style=f"bold {colors['degraded']}")
            out.append_text(safe_text(", ".join(pending), colors["degraded"], limit=200))
        self.summary.update(out)
        self._show_errors(e, now)
        self._show_charts(e, now)
        key = (e.model, e.served_version or e.expected_version)
        if key != self._version_key:
            self._version_key = key
            if e.model and key[1]:
                self._load_version(e.model, key[1])
            else:  # "loading…" would wait for ever
                said = (
                    "not known yet: neither the endpoint nor the registry says" if e.model else "no model set"
                )
                self._show_version(key, Text(f"model version: {said}", style="dim"))

    def _show_errors(self, e: EndpointSnapshot, now: float) -> None:
        colors = self.console.theme_colors()
        if not e.recent_errors:
            self.errors.update(
                Text("none", style="dim") if not e.last_error else safe_text(e.last_error, limit=500)
            )
            return
        out = Text(end="")
        for index, error in enumerate(reversed(e.recent_errors[-8:])):
            if index:
                out.append("\n")
            out.append(fmt_time(error.at, now), style="dim")
            if error.status is not None:
                out.append(f" {error.status}", style=colors["down"])
            out.append(" ")
            out.append_text(safe_text(error.error, limit=300))
        self.errors.update(out)

    def _show_charts(self, e: EndpointSnapshot, now: float) -> None:
        errors_now = f"errors % (now {formatting.ratio(e.error_ratio)})"
        current = self._endpoint(self.console.snapshot)
        name, span, minutes, unit, x_label = charts.VIEWS[self.view]
        rollups = [r for r in self.rollups if r.p50 is not None or r.rps is not None]
        # The hour view needs a few minutes of history (before that the recent probes say more).
        if len(rollups) >= 5 or (self.view and rollups):
            x = [round((r.minute * 60 - now) / unit, 2) for r in rollups]
            since = -span / unit
            note = f"last {name}, " + ("per minute" if minutes == 1 else f"{minutes}-minute means")
            percentiles = charts.quantile_lines(x, rollups)
            rates = {"req/s": (x, [r.rps for r in rollups])}
            self.latency_chart.show(
                {**percentiles, **charts.expected_bands(e, "latency", x[0], 1000.0)},
                x_label=x_label,
                # Said once, for both charts: the traffic chart's longer title would not fit it.
                note=note + charts.history_source(self.history_from),
                since=since,
            )
            self.traffic_chart.show(
                {**rates, **charts.expected_bands(e, "throughput", x[0], 1.0)},
                right={errors_now: charts.error_share(self.rollups, current, now, x[0], unit)},
                x_label=x_label,
                note=note,
                since=since,
            )
            return
        interval = self._interval()
        if e.prometheus_id is not None and (e.health_source == "prometheus" or not e.latency_history):
            self._show_prometheus_latency(e, rollups, now)
        else:
            # One point per successful probe, `interval` apart while the endpoint answers.
            latency = [v * 1000 for v in e.latency_history]
            first = -(len(latency) - 1) * interval if latency else -interval
            self.latency_chart.show(
                {
                    "probe": ([(i - len(latency) + 1) * interval for i in range(len(latency))], latency),
                    **charts.expected_bands(e, "latency", first, 1000.0),
                },
                x_label="seconds ago",
                note=f"last {len(latency)} ok probes",
            )
        # One point per RPS_STEP seconds of scrapes (a scrape comes with each probe).
        step = math.ceil(RPS_STEP / interval) * interval / 60
        rps = list(e.rps_history)
        x = [(i - len(rps) + 1) * step for i in range(len(rps))]
        since = x[0] if x else -10.0
        self.traffic_chart.show(
            {"req/s": (x, rps), **charts.expected_bands(e, "throughput", since, 1.0)},
            right={errors_now: charts.error_share(self.rollups, current, now, since)},
            x_label="minutes ago",
            note="recent",
            since=since,
        )

    def _show_prometheus_latency(self, e: EndpointSnapshot, rollups: list[Rollup], now: float) -> None:
        """An endpoint whose latency comes from Prometheus' quantiles (the console does not probe it)."""
        quantiles, since, note = charts.prometheus_latency(e, rollups, now, self.history_from)
        self.latency_chart.show(
            {**quantiles, **charts.expected_bands(e, "latency", since, 1000.0)},
            x_label="minutes ago",
            note=note,
            since=since,
        )

    def _interval(self) -> float:
        try:
            return max(self.console.settings.endpoint(self.endpoint_name).interval, 0.1)
        except KeyError:
            return 5.0

    # -- stored part: rollups, alerts, audit, registry -----------------------------------------------
    def reload(self) -> None:
        self._load_store()

    def _load_store(self) -> None:
        # A read still waiting on a slow Prometheus gives way: its queries are dropped, not awaited.
        self._chart_token.set()
        self._chart_token = threading.Event()
        self._read_store(self._chart_token)

    def on_unmount(self) -> None:
        self._chart_token.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail-store")
    def _read_store(self, superseded: threading.Event) -> None:
        store = self.console.backend.store
        now = self.console.clock()
        view = self.view
        _, span, step, _, _ = charts.VIEWS[view]
        from mlops_console.core.sources.prometheus_history import chart_history

        shown = self._endpoint(self.console.snapshot)  # discovered endpoints are known from it alone
        rollups, history_from = chart_history(
            self.console.settings, store, self.endpoint_name, now, span, step, shown, superseded
        )
        if superseded.is_set():
            return
        alerts = store.list_alerts("all", limit=50, endpoint=self.endpoint_name)
        audit = charts.endpoint_audit(self.console.settings, store, self.endpoint_name, shown)
        self.app.call_from_thread(self._show_store, superseded, rollups, alerts, audit, history_from)

    def _show_store(
        self,
        token: threading.Event,
        rollups: tuple[Rollup, ...],
        alerts: list[Alert],
        audit: list[AuditEntry],
        history_from: str = "",
    ) -> None:
        if token is not self._chart_token:
            return  # switched again meanwhile: that view's load follows
        self.rollups, self.history_from = rollups, history_from
        self.latency_chart.border_subtitle = escape(history_from)
        self.traffic_chart.border_subtitle = escape(history_from)
        now = self.console.clock()
        e = self._endpoint(self.console.snapshot)
        if e is not None:
            self._show_charts(e, now)
        with self.app.batch_update():
            self.alerts_table.clear()
            for alert in alerts:
                self.alerts_table.add_row(
                    fmt_time(alert.started_at, now),
                    safe_text(alert.display_state),
                    safe_text(alert.rule, limit=30),
                    safe_text(alert.summary, limit=200),
                    key=str(alert.id),
                )
            self.alerts_table.border_subtitle = "" if alerts else "no alerts"
            self.deploys_table.clear()
            for row in audit:
                change = f"{row.from_version or DASH}→{row.to_version or DASH}"
                self.deploys_table.add_row(
                    fmt_time(row.at, now),
                    safe_text(row.action),
                    safe_text(change),
                    safe_text(row.actor, limit=40),
                    safe_text(row.result),
                    safe_text(row.reason or "", limit=200),
                    key=str(row.id),
                )
            self.deploys_table.border_subtitle = "" if audit else "no promotes or rollbacks recorded"

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail-registry")
    def _load_version(self, model: str, version: str) -> None:
        backend, key = self.console.backend, (model, version)
        if not backend.registry_configured:
            self.app.call_from_thread(self._show_version, key, Text("no registry configured", style="dim"))
            return
        try:
            info = backend.registry.version(model, version)
        except Exception as exc:
            self.app.call_from_thread(self._show_version, key, safe_text(str(exc), limit=300))
            return
        self.app.call_from_thread(self._show_version, key, info)

    def _show_version(self, key: tuple[str | None, str | None], info: Any) -> None:
        """The version panel of `key`: the registry's record of it, or a text saying why there is none."""
        if key != self._version_key:
            return  # answered after the endpoint moved on (a cancelled worker's thread still answers)
        self.version_panel.border_title = "served model version"
        if isinstance(info, Text):
            self.version_panel.update(info)
            return
        self.version_panel.update(version_record(info, self.console.clock()))
        self.version_panel.border_title = safe_text(f"served model version v{info.version}")
