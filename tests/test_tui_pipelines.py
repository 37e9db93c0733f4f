"""The pipelines screen and a pipeline's runs, driven through the real console over sample snapshots."""

from __future__ import annotations

from pathlib import Path

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.screens.pipeline_runs import PipelineRunsScreen
from mlops_console.tui.screens.pipelines import PipelinesScreen
from tests import sample
from tests._tui import rows, settle


async def test_pipelines_screen_shows_health_due_sparklines_and_escaped_names(tmp_path: Path) -> None:
    app: MlopsConsole = sample.make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"pipelines", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        shown = rows(screen.table)
        assert [r[0] for r in shown] == ["nightly-train", "[bold red]evil[/] red scoring"]
        nightly, scoring = shown
        assert "down" in nightly[1] and nightly[2] == "FAILED" and nightly[3] == "5h"
        assert nightly[4] == "in 1h", "due a day after the last success, which ended 22 h ago"
        assert nightly[5].startswith("▁") or any(ch in nightly[5] for ch in "▂▃▄▅▆▇█")
        assert "val_accuracy" in nightly[6] and nightly[7] == "pipeline_failed"
        assert "degraded" in scoring[1] and scoring[7] == "run_metric:rows_processed"
        assert "rows_processed" in scoring[6] and "1040" in scoring[6]
        assert not any("\x1b" in cell for row in shown for cell in row)

        await pilot.press("enter")
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, PipelineRunsScreen)
        listed = rows(runs.table)
        assert len(listed) == 9 and listed[0][1] == "FAILED" and listed[0][2] == "14m"
        assert listed[0][4] == "http://mlflow.example:5000/#/experiments/7/runs/run00"
        assert "val_accuracy=0.91" in listed[1][3]
        verdicts = runs.verdicts.render().plain  # type: ignore[union-attr]
        assert "pipeline_failed: HOLDS  latest run run00 of nightly-train ended FAILED" in verdicts
        assert "pipeline_late: clear" in verdicts
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PipelinesScreen)
        # `/` filters by name.
        await pilot.press("slash", *"scoring", "enter")
        await settle(pilot)
        assert [r[0] for r in rows(screen.table)] == ["[bold red]evil[/] red scoring"]
