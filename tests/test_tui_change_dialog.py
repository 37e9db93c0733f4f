"""The promote/rollback confirmation: metrics that get worse say so; a registry that cannot be reached
offers nothing to confirm, and the status bar says so too."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.table import Table
from textual.widgets import Button, Static

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.confirm_change import ChangeDialog
from mlops_console.tui.model_metrics import direction, judge
from mlops_console.tui.screens.models import ModelsScreen
from mlops_console.tui.widgets.status_bar import StatusBar
from tests import sample
from tests._tui import settle
from tests.fixtures_mlflow import MLFLOW_BIN, free_port, quiet_env, stop_process_group, wait_http_ok


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("accuracy", "higher"),
        ("val_accuracy", "higher"),
        ("f1_score", "higher"),
        ("roc_auc", "higher"),
        ("r2", "higher"),
        ("precision_at_10", "higher"),
        ("recall", "higher"),
        ("log_loss", "lower"),
        ("val_loss", "lower"),
        ("rmse", "lower"),
        ("mean_absolute_error", "lower"),
        ("error_rate", "lower"),
        ("neg_mean_squared_error", "higher"),  # scikit-learn negates losses in its scorers
        ("score", None),
        ("n_estimators", None),
        ("training_samples", None),
    ],
)
def test_which_way_is_better_is_read_from_the_name(name: str, way: str | None) -> None:
    assert direction(name) == way


def test_judgement_of_a_change() -> None:
    assert judge("accuracy", 0.95, 0.91) == "worse"
    assert judge("accuracy", 0.91, 0.95) == "better"
    assert judge("rmse", 53.1, 55.0) == "worse"
    assert judge("rmse", 55.0, 53.1) == "better"
    assert judge("f1", 0.9, 0.9) == "same"
    assert judge("n_estimators", 100, 50) is None
    assert judge("accuracy", None, 0.9) is None and judge("accuracy", float("nan"), 0.9) is None


def _cells(table: Table, column: int) -> list:
    return list(table.columns[column].cells)


async def test_promote_dialog_marks_a_worse_metric_in_red_and_in_words(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down", "down", "tab", "down", "p")  # iris v2 over production v3
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ChangeDialog) and dialog.plan is not None
        table = dialog.query_one("#metrics", Static).content
        assert isinstance(table, Table)
        names = [c.plain for c in _cells(table, 0)]
        verdicts = dict(zip(names, (c.plain for c in _cells(table, 4)), strict=True))
        # v3 → v2: accuracy 0.89 → 0.91 and f1 0.88 → 0.9 rise, log_loss 0.31 → 0.33 rises too (worse)
        assert verdicts == {"accuracy": "(better)", "f1": "(better)", "log_loss": "(worse)"}
        red = app.theme_colors()["down"]
        row = names.index("log_loss")
        assert red in str(_cells(table, 2)[row].style) and red in str(_cells(table, 0)[row].style)
        assert red not in str(_cells(table, 2)[names.index("accuracy")].style)
        await pilot.press("escape")


@dataclass
class StoppableServer:
    url: str
    port: int
    root: Path
    tracking_uri: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_path = self.root / "server.log"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    MLFLOW_BIN,
                    "server",
                    "--backend-store-uri",
                    self.tracking_uri,
                    "--default-artifact-root",
                    (self.root / "artifacts").as_uri(),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-w",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=quiet_env(),
                start_new_session=True,
            )
        wait_http_ok(f"{self.url}/health", self.process, 180.0, log_path)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)


@pytest.fixture
def own_mlflow_server(mlflow_registry_template, tmp_path: Path) -> Iterator[StoppableServer]:
    """A real `mlflow server` this test may stop and start again (the shared one must stay up)."""
    registry = mlflow_registry_template.copy_to(tmp_path / "server")
    port = free_port()
    server = StoppableServer(f"http://127.0.0.1:{port}", port, registry.root, registry.tracking_uri)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(registry.root / "artifacts", ignore_errors=True)


async def _until(pilot, condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


@pytest.mark.slow
async def test_stopped_registry_offers_no_rollback_and_shows_in_the_status_bar(
    own_mlflow_server: StoppableServer, tmp_path: Path
) -> None:
    app: MlopsConsole = sample.make_app(tmp_path, tracking_uri=own_mlflow_server.url, deploy=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert [r.key.value for r in screen.models_table.ordered_rows] == ["diabetes", "iris"]
        assert "registry ok" in app.status_text().plain, app.backend.registry_state
        await pilot.press("down")  # iris
        await settle(pilot)

        own_mlflow_server.stop()
        # The engine's last word (this console's snapshot) is still "ok": it checks every 30 s.
        assert app.snapshot is not None and app.snapshot.registry == "ok"
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ChangeDialog)
        await _until(pilot, lambda: "cannot plan" in str(dialog.query_one("#plan", Static).render()), "plan")
        assert "registry unreachable" in str(dialog.query_one("#plan", Static).render())
        assert not dialog.query_one("#confirm", Button).display
        assert not dialog.query_one("#reason").display
        assert str(dialog.query_one("#cancel", Button).label) == "Close"
        # ... and so does the status line of the models screen, visible around the dialog
        status_bar = screen.query_one(StatusBar)
        await _until(pilot, lambda: "registry unreachable" in str(status_bar.render()), "status")
        assert "registry ok" not in app.status_text().plain
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)

        own_mlflow_server.start()
        app._recheck_registry()  # what the console's timer does every few seconds while it looks down
        await _until(pilot, lambda: "registry ok" in app.status_text().plain, "recovery")
