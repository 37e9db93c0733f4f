"""Typing into the overview's filter: each keystroke's rows are there within the keystroke."""

from __future__ import annotations

from pathlib import Path

from mlops_console.tui.widgets.filter_bar import FilterBar
from tests.test_tui_app import rows, settle
from tests.test_tui_overview_fleet import FLEET, fleet, overview


def names(table) -> list[str]:
    return sorted(r[1] for r in rows(table))


async def test_a_keystroke_filters_the_rows_before_anything_else_runs(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        bar.insert_text_at_cursor("fleet-14")  # as a key typed into the bar does it
        assert names(table) == [f"fleet-14{i}" for i in range(10)]  # no message handled in between
        bar.action_clear()
        assert table.row_count == FLEET
        # Typed on at once after `esc`: nothing handled later may put back an earlier text.
        bar.open()
        bar.insert_text_at_cursor("fleet-02")
        await settle(pilot)
        assert names(table) == [f"fleet-02{i}" for i in range(10)]
        assert screen.filter_text == "fleet-02" and bar.value == "fleet-02"
