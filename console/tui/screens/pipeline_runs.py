"""One pipeline's recent runs: start, status, duration, metrics, and the run's page in the MLflow UI."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlops_console.core import formatting
from mlops_console.core.pipelines import PipelineSnapshot
from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, fmt_metric, safe_text


class PipelineRunsScreen(ConsoleScreen):
    TITLE_TEXT = "Pipeline runs"
    HELP = (
        "A pipeline's recent MLflow runs, newest first: when each started, how it ended, how long it "
        "took, its watched metrics and its page in the MLflow UI (http registries only); above them, "
        "what each rule says of the runs. `esc` goes back to the pipelines."
    )
    FILTERABLE = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.pipeline_name = name
        self.verdicts = Static(id="pipeline-verdicts")
        self.table: DataTable = DataTable(id="pipeline-runs", cursor_type="row", zebra_stripes=True)
        self._shown: object = None

    def compose_body(self) -> Iterable[Widget]:
        yield self.verdicts
        yield self.table

    def on_mount(self) -> None:
        super().on_mount()
        for key, label, width in (
            ("start", "started", 19),
            ("status", "status", 9),
            ("took", "took", 7),
            ("metrics", "metrics", 50),
            ("run", "run / MLflow UI", 60),
        ):
            self.table.add_column(label, key=key, width=width)

    def focus_main(self) -> None:
        self.table.focus()

    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        found = next((p for p in snapshot.pipelines if p.name == self.pipeline_name), None)
        if found is not None and found != self._shown:
            self._shown = found
            self._draw(found)

    def _draw(self, pipeline: PipelineSnapshot) -> None:
        colors = self.console.theme_colors()
        lines = Text(end="")
        lines.append(
            clean(f"{pipeline.name}  experiment {pipeline.experiment}  state {pipeline.state}", limit=200)
        )
        for verdict in pipeline.verdicts:
            word = {True: "HOLDS", False: "clear", None: "no verdict"}[verdict.active]
            style = colors.get("down", "") if verdict.active else colors.get("muted", "")
            rule = verdict.rule + (f":{verdict.metric}" if verdict.metric else "")
            lines.append("\n")
            lines.append(clean(f"{rule}: {word}", limit=80), style=style)
            lines.append(clean(f"  {verdict.detail}", limit=200))
        self.verdicts.update(lines)
        watched = [name for name, _ in pipeline.metrics]
        with self.app.batch_update():
            self.table.clear()
            for run in pipeline.runs:
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.start)) if run.start else DASH
                took = formatting.age(0.0, run.duration) if run.duration is not None else DASH
                names = watched or [name for name, _ in run.metrics][:4]
                metrics = "  ".join(
                    f"{name}={fmt_metric(value)}" for name in names if (value := run.metric(name)) is not None
                )
                status_style = colors.get("down", "") if run.status in ("FAILED", "KILLED") else ""
                self.table.add_row(
                    Text(started),
                    safe_text(run.status, status_style),
                    Text(took),
                    safe_text(metrics or DASH, limit=200),
                    safe_text(pipeline.url_of(run) or run.run_id, limit=200),
                    key=run.run_id,
                )
        self.table.border_title = clean(f"runs of {pipeline.name} ({len(pipeline.runs)})", limit=100)
