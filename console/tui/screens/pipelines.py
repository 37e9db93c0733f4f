"""Pipelines: each `[[pipelines]]` job's last run, when the next is due, and its history as sparklines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

from mlops_console.core import formatting
from mlops_console.core.pipelines import PipelineSnapshot
from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, fmt_metric, safe_text, sparkline
from mlops_console.tui.widgets.filter_bar import FilterBar

SPARK_WIDTH = 16
HEALTH = {"up": "up", "degraded": "degraded", "down": "down", "unknown": "unknown"}


def due_text(pipeline: PipelineSnapshot, now: float) -> str:
    due = pipeline.next_due
    if due is None:
        return DASH
    return f"in {formatting.age(now, due)}" if due > now else f"{formatting.age(due, now)} overdue"


class PipelinesScreen(ConsoleScreen):
    TITLE_TEXT = "Pipelines"
    HELP = (
        "Training and batch-scoring pipelines read from their MLflow runs (`[[pipelines]]`): the last "
        "run's status and age, when a successful run is due, the durations and each watched metric of "
        "the recent successful runs as sparklines, and the rules that hold. `enter` lists a pipeline's "
        "recent runs. Their alerts are on the alerts screen with the endpoints' (`pipeline:NAME`)."
    )
    BINDINGS = [
        Binding("enter", "open", "Runs", id="pipelines.open", tooltip="The pipeline's recent runs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.table: DataTable = DataTable(id="pipelines", cursor_type="row", zebra_stripes=True)
        self.filter_text = ""
        self._pipelines: tuple[PipelineSnapshot, ...] = ()
        self._state = "not configured"
        self._shown: object = None

    def compose_body(self) -> Iterable[Widget]:
        yield self.table

    def on_mount(self) -> None:
        super().on_mount()
        for key, label, width in (
            ("name", "pipeline", 22),
            ("health", "health", 10),
            ("last", "last run", 9),
            ("age", "age", 6),
            ("due", "next due", 13),
            ("durations", "duration", SPARK_WIDTH + 7),
            ("metrics", "metrics", 34),
            ("firing", "rules holding", 36),
        ):
            self.table.add_column(label, key=key, width=width)
        self.table.border_title = "pipelines"

    def focus_main(self) -> None:
        self.table.focus()

    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        self._pipelines, self._state = snapshot.pipelines, snapshot.pipelines_state
        self._draw()

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.filter_text = event.text
        self._shown = None
        self._draw()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _draw(self) -> None:
        pipelines: Sequence[PipelineSnapshot] = self._pipelines
        if self.filter_text:
            needle = self.filter_text.lower()
            pipelines = [p for p in pipelines if needle in clean(p.name).lower()]
        now = self.console.clock()
        signature = (tuple(pipelines), self._state, int(now))
        if signature == self._shown:
            return
        self._shown = signature
        colors = self.console.theme_colors()
        with self.app.batch_update():
            cursor = self.table.cursor_row
            self.table.clear()
            for p in pipelines:
                last = p.last_run
                health = p.health
                durations = p.durations
                took = formatting.age(0.0, durations[-1]) if durations else DASH
                metrics = Text(end="")
                for name, _bad in p.metrics:
                    history = p.metric_history(name)
                    latest = fmt_metric(history[-1]) if history else DASH
                    metrics.append(clean(name, limit=24) + " ")
                    metrics.append(sparkline(history, 8), style=colors.get("muted", ""))
                    metrics.append(f" {latest}  ")
                holding = [
                    v.rule + (f":{clean(v.metric, limit=24)}" if v.metric else "")
                    for v in p.verdicts
                    if v.active
                ]
                if p.state != "ok":
                    holding.insert(0, clean(p.state, limit=80))
                self.table.add_row(
                    safe_text(p.name, limit=60),
                    self.console.health_text(HEALTH[health]),
                    Text(
                        clean(last.status) if last else DASH,
                        style=colors.get("down", "") if last and last.status in ("FAILED", "KILLED") else "",
                    ),
                    Text(formatting.age(last.start, now) if last and last.start else DASH),
                    Text(due_text(p, now)),
                    Text(sparkline(durations, SPARK_WIDTH) + " " + took),
                    metrics,
                    safe_text(", ".join(holding) or DASH, limit=200),
                    key=p.name,
                )
            if pipelines:
                self.table.move_cursor(row=min(cursor, len(pipelines) - 1))
        self.table.border_title = f"pipelines ({len(pipelines)})"
        self.table.border_subtitle = clean(
            f"registry: {self._state}" if self._state not in ("ok", "not configured") else "", limit=120
        ) or ("" if self._pipelines else "no [[pipelines]] configured")

    def action_open(self) -> None:
        table = self.table
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        if row_key.value is not None:
            from mlops_console.tui.screens.pipeline_runs import PipelineRunsScreen

            self.app.push_screen(PipelineRunsScreen(row_key.value))
