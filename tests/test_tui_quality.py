"""The model-quality view and the overview's drift column, driven through the real console over sample
data (a frozen quality snapshot: no log is read on the UI thread)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from mlops_console.tui.screens.quality import QualityScreen
from mlops_console.tui.text import DASH
from tests import sample
from tests._tui import rows, settle


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


async def test_drift_command_shows_features_sorted_by_drift_with_escaped_names(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"drift iris-prod", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QualityScreen)
        shown = rows(screen.table)
        assert [r[0] for r in shown] == [
            "petal_length",
            "petal_width",
            "sepal_width",
            "[bold red]evil[/] red",
            "prediction",
        ]
        assert [r[1] for r in shown][:4] == ["DRIFT", "DRIFT", "DRIFT", "ok"]
        assert shown[0][2] == "1.75" and shown[0][3] == "4.38 (0.0603)" and shown[0][6] == "1500/601"
        assert shown[0][5]  # the trend sparkline
        assert not any("\x1b" in cell for row in shown for cell in row)
        summary = screen.summary.render().plain  # type: ignore[union-attr]
        assert "iris v2" in summary and "reference first 1500 rows of version 2" in summary
        assert "3 of 4 features drift (share 0.75, threshold 0.50)" in summary
        assert "12 of 601 rows break the signature" in summary and "petal_width null in 12 rows" in summary
        assert "0 of 601 invalid" in summary and "stuck: no" in summary
        # `esc` goes back to the endpoint's detail, where `d` opens the view again.
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, QualityScreen)


async def test_enter_shows_reference_and_current_histograms_of_the_feature(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.open_quality("iris-prod")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QualityScreen)
        screen.table.focus()
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        text = screen.histogram.render().plain  # type: ignore[union-attr]
        assert screen.selected == "sepal_width"
        assert "reference" in text and "current" in text
        # sepal_width's first bin: 10% of the reference, 140 of 601 current rows (23%).
        assert "10% → 23%" in text.splitlines()[1]
        assert "1500 reference and 601 current values" in text


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_overview_flags_drifting_endpoints(app: MlopsConsole, size: tuple[int, int]) -> None:
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        table = app.screen.table
        columns = [str(c.label.plain) for c in table.columns.values()]
        drift = columns.index("drift")
        by_name = {r[1].split(" ")[0]: r for r in rows(table)}
        assert by_name["iris-prod"][drift] == "⚠3/4"
        assert by_name["iris-staging"][drift] == DASH  # no inference log
        # Every column fits the terminal: nothing scrolls off to the right, even at 80 columns.
        assert table.virtual_size.width <= table.scrollable_content_region.width


async def test_mix_over_time_shows_each_version_with_the_promote_between(tmp_path: Path) -> None:
    """`m` in the quality view: the stored evaluations' prediction mix, newest first, per version, with
    the sample's promote of iris 2→3 (alice, T0-900) placed between the last v2 and the first v3
    evaluation; class names from the log are shown escaped."""
    app = sample.make_app(tmp_path)
    store = app.backend.store
    for at, version, mix in (
        (sample.T0 - 1500, "2", [["setosa", 0.34], ["[b]versicolor[/b]", 0.33], ["virginica", 0.33]]),
        (sample.T0 - 1200, "2", [["setosa", 0.35], ["[b]versicolor[/b]", 0.32], ["virginica", 0.33]]),
        (sample.T0 - 600, "3", [["setosa", 0.9], ["[b]versicolor[/b]", 0.05], ["virginica", 0.05]]),
        (sample.T0 - 300, "3", [["setosa", 0.92], ["[b]versicolor[/b]", 0.04], ["virginica", 0.04]]),
    ):
        window = {"model": "iris", "version": version, "evaluated_at": at, "mix": mix}
        store.save_quality("iris-prod", "/var/log/iris.jsonl", {}, {}, window, at=at)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"drift iris-prod", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QualityScreen)
        await pilot.press("m")
        await settle(pilot)
        lines = screen.histogram.render().plain.splitlines()  # type: ignore[union-attr]
        body = [line for line in lines if line.strip()][1:]
        assert [line[13:15] if line[13:15] in ("v2", "v3") else line[:2] for line in body] == [
            "v3",
            "v3",
            "──",
            "v2",
            "v2",
        ]
        assert "promote 2→3 by alice@ops" in body[2]
        assert "setosa 92%  [b]versicolor[/b] 4%  virginica 4%" in body[0]
        assert "setosa 34%" in body[4]
        # `enter` on a feature goes back to its histogram.
        await pilot.press("enter")
        await settle(pilot)
        assert "reference and" in screen.histogram.render().plain  # type: ignore[union-attr]
