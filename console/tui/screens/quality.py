"""Model quality of one endpoint: features sorted by drift with their scores, trend and sample sizes,
the prediction's drift and mix, inputs breaking the signature, invalid and stuck predictions, and the
reference used; `enter` on a feature shows its reference and current histograms side by side; `m`
shows the prediction mix over time per model version instead, with the alias's promotes and rollbacks
between the evaluations they separate (read from the store on a worker thread).

Everything comes from the endpoint's frozen `QualitySnapshot` in the engine snapshot: no log, store or
registry is read here. Feature names, bin labels, versions and predictions come from the inference log
and the registry, so every one is shown through `safe_text`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlops_console.core import formatting
from mlops_console.core.quality.snapshot import FeatureScore, QualitySnapshot
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.core.store import AuditEntry
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, fmt_time, safe_text, sparkline

TREND_WIDTH = 10
BAR_WIDTH = 13
BINS_SHOWN = 14
MIX_LINES = 16
"""Evaluations shown in the mix history (thinned evenly, keeping each version's newest)."""
MIX_WINDOWS = 500


def _number(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}g}"


def _window(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _bar(share: float, style: str) -> Text:
    filled = max(0, min(BAR_WIDTH, round(share * BAR_WIDTH * 2)))  # shares rarely pass one half
    return Text("█" * filled + " " * (BAR_WIDTH - filled), style=style, end="")


class QualityScreen(ConsoleScreen):
    TITLE_TEXT = "Model quality"
    HELP = (
        "Model quality of one endpoint, from its inference log, for the newest model version in the "
        "window. Each input feature (and the prediction) is compared with the reference: score is the "
        "normalised Wasserstein distance (numbers) or Jensen-Shannon distance (categories), PSI beside "
        "the value it reaches by chance with these sample sizes, KS for reference; a feature drifts when "
        "PSI clears both 0.1 and that value and the score clears 0.1. Without enough reference or "
        "current rows there is no verdict. The trend is the score at the last evaluations. `enter` on a "
        "feature shows the reference's and the window's histograms side by side; `m` shows the "
        "prediction mix over time per model version, with the promotes and rollbacks between "
        "evaluations. `esc` goes back."
    )
    FILTERABLE = False

    BINDINGS = [
        Binding("enter", "histogram", "Histogram", id="quality.histogram", tooltip="Reference vs current"),
        Binding("m", "mix", "Mix over time", id="quality.mix", tooltip="Prediction mix per version"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.endpoint_name = name
        self.summary = Static(Text("waiting for the engine…", style="dim"), id="quality-summary")
        self.table: DataTable = DataTable(id="quality-features", cursor_type="row", zebra_stripes=True)
        self.histogram = Static("", id="quality-histogram", classes="panel")
        self.quality: QualitySnapshot | None = None
        self.selected: str | None = None
        self._rows: list[str] = []
        self.showing_mix = False

    def compose_body(self) -> Iterable[Widget]:
        yield self.summary
        with Horizontal(id="quality-split"):
            yield self.table
            yield self.histogram

    def on_mount(self) -> None:
        super().on_mount()
        for key, label, width in (
            ("name", "feature", 16),
            ("verdict", "verdict", 12),
            ("score", "score", 6),
            ("psi", "PSI (chance)", 15),
            ("ks", "KS", 5),
            ("trend", "trend", TREND_WIDTH),
            ("n", "ref n/cur n", 11),
            ("missing", "missing", 7),
        ):
            self.table.add_column(label, key=key, width=width)
        self.table.border_title = "features, most drifted first"
        self.histogram.border_title = "histogram"

    def focus_main(self) -> None:
        self.table.focus()

    def _endpoint(self, snapshot: EngineSnapshot) -> EndpointSnapshot | None:
        return next((e for e in snapshot.endpoints if e.name == self.endpoint_name), None)

    # -- rendering -------------------------------------------------------------------------------------
    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        if not self.is_mounted:
            return
        e = self._endpoint(snapshot)
        if e is None:
            self.summary.update(safe_text(f"endpoint {self.endpoint_name} is not in the current snapshot"))
            return
        quality = e.quality
        if quality is None:
            out = safe_text(e.name, "bold", limit=80)
            out.append(
                "  no model-quality figures: this endpoint has no [endpoints.inference_log], or its log "
                "has not been read yet",
                style="dim",
            )
            self.summary.update(out)
            return
        if quality is self.quality:
            return  # the same evaluation: nothing to redraw
        self.quality = quality
        self.summary.update(self._summary(e, quality))
        self._fill_table(quality)
        if self.showing_mix:
            self._load_mix()
        else:
            self._show_histogram()

    def _summary(self, e: EndpointSnapshot, q: QualitySnapshot) -> Text:
        colors = self.console.theme_colors()
        bad, warn = f"bold {colors['down']}", colors["degraded"]
        now = self.console.clock()
        out = safe_text(e.name, "bold", limit=60)
        who = f"{q.model or e.model or ''} v{q.version}" if q.version else (q.model or e.model or "")
        out.append("  ")
        out.append_text(safe_text(who or DASH, limit=60))
        out.append(f"  window {_window(q.window)}: {q.rows} rows, evaluated {fmt_time(q.evaluated_at, now)}")
        out.append("\nreference ")
        out.append_text(safe_text(q.reference or DASH, limit=160))
        if q.drift_share is None:
            out.append("\ndrift: no verdict yet", style="dim")
            out.append(" (a feature needs enough reference and current rows)", style="dim")
        else:
            judged = sum(1 for f in q.features if f.verdict in ("drift", "ok"))
            out.append("\ndrift: ")
            out.append(
                "dataset drifts" if q.dataset_drift else "no dataset drift",
                style=bad if q.dataset_drift else "",
            )
            out.append(
                f" · {len(q.drifted)} of {judged} features drift (share {q.drift_share:.2f}, "
                f"threshold {q.dataset_share:.2f})"
            )
        predicted = q.prediction_drift
        if predicted is not None:
            out.append(" · prediction ")
            out.append("drifts" if predicted else "holds", style=bad if predicted else "")
        out.append("\ninputs: ")
        share = q.broken_rows / q.input_rows if q.input_rows else None
        out.append(
            f"{q.broken_rows} of {q.input_rows} rows break the signature ({formatting.ratio(share)})",
            style=warn if q.broken_rows else "",
        )
        if q.broken_rows and q.input_problems:
            out.append(": ")
            out.append_text(safe_text(q.input_problems, warn, limit=120))
        if q.signature:
            out.append("  [")
            out.append_text(safe_text(q.signature, "dim", limit=60))
            out.append("]")
        out.append("\npredictions: ")
        out.append(f"{q.invalid_rows} of {q.prediction_rows} invalid", style=bad if q.invalid_rows else "")
        if q.invalid_example:
            out.append(" (")
            out.append_text(safe_text(q.invalid_example, limit=80))
            out.append(")")
        out.append(" · stuck: ")
        if q.stuck:
            out.append("yes", style=bad)
            out.append(f", the same prediction for the last {q.stuck_run} rows: ")
            out.append_text(safe_text(q.stuck_prediction or DASH, limit=40))
        else:
            out.append(f"no (longest run with varying inputs {q.longest_run})")
        if q.mix:
            out.append(" · mix ")
            out.append_text(safe_text(", ".join(f"{k} {v:.0%}" for k, v in q.mix[:6]), limit=80))
        if q.performance:
            out.append(f"\nlive performance ({q.labelled} labelled rows): ")
            shown = ", ".join(
                f"{name} {live:.3g}" + (f" (training {base:.3g})" if base is not None else "")
                for name, live, base in q.performance
            )
            out.append_text(safe_text(shown, bad if q.performance_dropped else "", limit=160))
        notes = [*(f"also in the window: {v}" for v in q.other_versions), *q.events]
        if q.malformed:
            notes.append(f"{q.malformed} log lines were not records")
        if q.error:
            notes.insert(0, q.error)
        for note in notes[:3]:
            out.append("\n")
            out.append_text(safe_text(note, warn, limit=200))
        return out

    def _cells(self, f: FeatureScore) -> list[Text]:
        colors = self.console.theme_colors()
        style = f"bold {colors['down']}" if f.drifted else ("dim" if f.verdict not in ("ok",) else "")
        critical = f" ({_number(f.psi_critical)})" if f.psi_critical is not None else ""
        return [
            safe_text(f.name, "bold" if f.drifted else "", limit=40),
            Text(f.verdict.upper() if f.drifted else f.verdict, style=style),
            Text(_number(f.score)),
            Text(f"{_number(f.psi)}{critical}"),
            Text(_number(f.ks, 2)),
            Text(sparkline(f.trend, TREND_WIDTH), style=colors["accent"]),
            Text(f"{f.reference_n}/{f.current_n}"),
            Text(str(f.missing), style=colors["degraded"] if f.missing else ""),
        ]

    def _fill_table(self, q: QualitySnapshot) -> None:
        features = [*q.features, *q.predictions]
        keys = [f"{i}:{f.name}" for i, f in enumerate(features)]
        with self.app.batch_update():
            cursor = self.table.cursor_row
            self.table.clear()
            for key, feature in zip(keys, features, strict=True):
                self.table.add_row(*self._cells(feature), key=key)
            self._rows = [f.name for f in features]
            if self._rows:
                # The order changes with the scores: the cursor stays on the feature, not on the row.
                row = self._rows.index(self.selected) if self.selected in self._rows else cursor
                self.table.move_cursor(row=min(max(row, 0), len(self._rows) - 1), animate=False)
        self.table.border_subtitle = (
            "no features yet: the reference is not ready" if not features else f"{len(features)} columns"
        )

    def _show_histogram(self) -> None:
        q = self.quality
        if q is None or not self._rows:
            self.histogram.update(Text("select a feature and press enter", style="dim"))
            return
        name = self.selected if self.selected in self._rows else self._rows[0]
        feature = q.feature(name) if name else None
        if feature is None:
            return
        colors = self.console.theme_colors()
        self.histogram.border_title = f"histogram: {feature.name[:30]}"
        out = Text(end="")
        out.append(
            f"{'bin':<16} {'reference':<{BAR_WIDTH}} {'current':<{BAR_WIDTH}} ref → cur\n", style="bold"
        )
        current_total = sum(n for _, _, n in feature.bins) or 1
        for label, share, count in feature.bins[:BINS_SHOWN]:
            out.append_text(safe_text(f"{label[:16]:<16}", limit=16))
            out.append(" ")
            out.append_text(_bar(share, colors["accent"]))
            out.append(" ")
            out.append_text(_bar(count / current_total, colors["down"] if feature.drifted else colors["up"]))
            out.append(f" {share:3.0%} → {count / current_total:3.0%}\n")
        if len(feature.bins) > BINS_SHOWN:
            out.append(f"… {len(feature.bins) - BINS_SHOWN} more bins", style="dim")
        out.append(
            f"\n{feature.kind}, {feature.reference_n} reference and {feature.current_n} current values",
            style="dim",
        )
        self.histogram.update(out)

    # -- actions ---------------------------------------------------------------------------------------
    def _feature_at_cursor(self) -> str | None:
        row = self.table.cursor_row
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def action_histogram(self) -> None:
        self.showing_mix = False
        self.selected = self._feature_at_cursor()
        self._show_histogram()

    def action_mix(self) -> None:
        self.showing_mix = True
        self.histogram.border_title = "prediction mix over time"
        self.histogram.update(Text("reading the stored evaluations…", style="dim"))
        self._load_mix()

    @work(thread=True, exclusive=True, exit_on_error=False, group="quality-mix")
    def _load_mix(self) -> None:
        store = self.console.backend.store
        windows = store.quality_windows(self.endpoint_name, limit=MIX_WINDOWS)
        model = alias = None
        try:
            configured = self.console.settings.endpoint(self.endpoint_name)
            model, alias = (
                configured.model,
                configured.alias or self.console.settings.alias_for(configured.model or ""),
            )
        except KeyError:
            pass
        moves: list[AuditEntry] = []
        if model:
            moves = [
                r
                for r in store.list_audit(model=model, limit=200)
                if r.action in ("promote", "rollback") and r.alias in (alias, None)
            ]
        self.app.call_from_thread(self._show_mix, windows, moves)

    def _show_mix(self, windows: list[dict[str, Any]], moves: list[AuditEntry]) -> None:
        if not self.showing_mix:
            return
        self.histogram.update(mix_history(windows, moves, self.console.clock(), self.console.theme_colors()))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_histogram()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.selected = self._feature_at_cursor()
        if not self.showing_mix:
            self._show_histogram()


def _thinned(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most `MIX_LINES` of `windows` (newest first), evenly spread, always keeping each version's
    newest evaluation so every version in the history shows."""
    if len(windows) <= MIX_LINES:
        return windows
    step = len(windows) / MIX_LINES
    keep = {int(i * step) for i in range(MIX_LINES)}
    seen: set[Any] = set()
    for i, w in enumerate(windows):
        if w.get("version") not in seen:
            seen.add(w.get("version"))
            keep.add(i)
    return [w for i, w in enumerate(windows) if i in keep]


def _mix_text(mix: list[Any]) -> str:
    return "  ".join(
        f"{name} {share:.0%}" if name not in ("p5", "p50", "p95") else f"{name} {share:.3g}"
        for name, share in mix[:6]
    )


def mix_history(
    windows: list[dict[str, Any]], moves: list[AuditEntry], now: float, colors: dict[str, str]
) -> Text:
    """The stored evaluations' prediction mix, newest first, one line each (time, version, mix), with
    each promote or rollback of the alias placed between the evaluations it falls between."""
    if not windows:
        return Text("no evaluations stored yet for this endpoint", style="dim")
    shown = _thinned(windows)
    oldest = shown[-1].get("evaluated_at") or 0.0
    pending = sorted((m for m in moves if m.at >= oldest), key=lambda m: -m.at)
    out = Text(end="")
    out.append(f"{'time':<12} {'ver':<6} prediction mix\n", style="bold")
    for w in shown:
        at = float(w.get("evaluated_at") or 0.0)
        while pending and pending[0].at > at:
            move = pending.pop(0)
            out.append_text(
                safe_text(
                    f"── {fmt_time(move.at, now)} {move.action} {move.from_version or DASH}→"
                    f"{move.to_version or DASH} by {move.actor} ──",
                    f"bold {colors['accent']}",
                    limit=120,
                )
            )
            out.append("\n")
        version = f"v{w['version']}" if w.get("version") else DASH
        out.append(f"{fmt_time(at, now):<12} ")
        out.append_text(safe_text(f"{version[:6]:<6}", limit=6))
        out.append(" ")
        out.append_text(safe_text(_mix_text(w.get("mix") or []) or DASH, limit=80))
        out.append("\n")
    return out
