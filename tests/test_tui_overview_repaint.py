"""The overview's table keeps each cell's and each line's rendering between frames; whatever changes how
a line looks (the theme, focus, the cursor, the width, a horizontal scroll, a value) repaints it as
DataTable would paint it from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_tui_overview_fleet import fleet, overview, painted, show


def from_scratch(table: Any) -> list[list[tuple[str, object]]]:
    """The table's lines as DataTable paints them with no cache of either kind (caches warm again after)."""
    table.fast_cells = False
    table._clear_caches()
    try:
        return painted(table)
    finally:
        table.fast_cells = True


async def test_kept_cells_and_lines_follow_theme_focus_cursor_and_width(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet(**{"fleet-002": {"health": "down"}})) as (pilot, screen):
        table = screen.table
        table.focus()
        table.move_cursor(row=3, animate=False)
        await pilot.pause()
        before = painted(table)  # every cell and line of this look kept

        # Another theme: every colour differs, cells with the same values included.
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        themed = painted(table)
        assert themed != before
        assert themed == from_scratch(table)

        # The cursor moves: the rows it left and reached are repainted, the others are kept.
        table.move_cursor(row=5, animate=False)
        await pilot.pause()
        moved = painted(table)
        assert moved[1 + 3] != themed[1 + 3] and moved[1 + 5] != themed[1 + 5]  # +1: the header
        assert moved == from_scratch(table)

        # Focus leaves the table for the filter bar: the cursor row takes its unfocused colours.
        await pilot.press("slash")
        await pilot.pause()
        assert not table.has_focus
        blurred = painted(table)
        assert blurred[1 + 5] != moved[1 + 5]
        assert blurred == from_scratch(table)
        await pilot.press("escape")
        await pilot.pause()

        # A narrower screen (not across the narrow width: the same columns) and a wider one.
        for width in (140, 170):
            await pilot.resize_terminal(width, 30)
            await pilot.pause()
            assert len(table.render_line(2).text) == table.size.width
            assert painted(table) == from_scratch(table)

        # A value that changes back and forth at one position, while the rest stays.
        await show(pilot, fleet(**{"fleet-002": {"health": "up"}}))
        shown = painted(table)
        assert "✖ down" not in "".join(text for line in shown for text, _ in line)
        assert shown == from_scratch(table)


async def test_a_line_scrolled_sideways_is_cropped_as_datatable_crops_it(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        await pilot.resize_terminal(130, 30)  # the columns are wider than the screen
        await show(pilot, fleet())
        await pilot.pause()
        assert table.max_scroll_x > 0
        table.move_cursor(row=2, animate=False)
        unscrolled = painted(table)
        table.scroll_to(x=7, animate=False)
        await pilot.pause()
        scrolled = painted(table)
        assert scrolled != unscrolled
        assert scrolled == from_scratch(table)


async def test_the_header_marks_the_sorted_column_when_the_rows_keep_their_order(tmp_path: Path) -> None:
    """Sorting by another column that leaves the rows where they were (a healthy fleet by health, then by
    name) still moves the header's arrow to that column: the arrow is the only sign of the new sort."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        order = [row.key for row in table.ordered_rows]
        assert "health▲" in table.render_line(0).text
        screen.sort_by("name")
        await pilot.pause()
        assert [row.key for row in table.ordered_rows] == order, "the same order: no row moved"
        header = table.render_line(0).text
        assert "endpoint▲" in header and "health▲" not in header, header
        assert painted(table) == from_scratch(table)
