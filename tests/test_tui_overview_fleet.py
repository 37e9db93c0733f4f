"""The overview with more endpoints than fit on screen: rows out of view are brought up to date lazily,
yet what the user sees, sorts and filters is always every endpoint's latest snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from textual.coordinate import Coordinate
from textual.widgets import DataTable

from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.overview import OverviewScreen
from mlops_console.tui.widgets.filter_bar import FilterBar
from tests import sample
from tests.test_tui_app import rows, settle

FLEET = 150  # the table shows about 20 of them at 160x30


def fleet(**changed: dict[str, object]) -> EngineSnapshot:
    """FLEET healthy endpoints `fleet-000`..; `changed` replaces fields of some of them by name."""
    base = sample.snapshot()
    template = next(e for e in base.endpoints if e.health == "up")
    endpoints: list[EndpointSnapshot] = []
    for i in range(FLEET):
        name = f"fleet-{i:03d}"
        e = dataclasses.replace(template, name=name, firing=[], p95=0.010, served_version="3")
        endpoints.append(dataclasses.replace(e, **changed.get(name, {})))  # type: ignore[arg-type]
    return dataclasses.replace(base, endpoints=endpoints)


async def show(pilot, snapshot: EngineSnapshot) -> None:
    pilot.app.post_message(SnapshotReceived(snapshot))
    await pilot.pause()
    await pilot.pause()


@contextlib.asynccontextmanager
async def overview(tmp_path: Path, first: EngineSnapshot) -> AsyncIterator[tuple[Any, OverviewScreen]]:
    """The sample console at 160x30 on its overview, showing `first`."""
    app = sample.make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        await show(pilot, first)
        yield pilot, screen


async def test_a_row_scrolled_into_view_shows_its_current_values(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        assert table.row_count == FLEET
        assert table.get_row_index("fleet-140") > table.size.height  # below the fold
        await show(pilot, fleet(**{"fleet-140": {"p95": 0.5}, "fleet-001": {"p95": 0.25}}))
        assert table.get_cell("fleet-001", "p95") == "250ms"  # in view: updated at once
        table.scroll_end(animate=False)  # as the mouse wheel or `end` would, without the animation
        await pilot.pause()
        assert table.scroll_y > 0
        row = next(r for r in rows(table) if r[1] == "fleet-140")
        assert row[screen_column(screen, "p95")] == "500ms"


def screen_column(screen: OverviewScreen, key: str) -> int:
    return [c.key for c in screen._columns()].index(key)


async def test_sorting_and_filtering_see_endpoints_out_of_view(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        # An endpoint far below the fold goes down: sorted by health it moves to the top, showing so.
        await show(pilot, fleet(**{"fleet-130": {"health": "down", "p95": 0.9}}))
        first = rows(table)[0]
        assert first[1] == "fleet-130" and first[0] == "✖ down"
        # Sorted by p95 (slowest last, reversed: first), a change to a row out of view reorders too.
        screen.sort_by("p95", reverse=True)
        await show(pilot, fleet(**{"fleet-120": {"p95": 2.0}, "fleet-060": {"p95": 1.5}}))
        table.scroll_home(animate=False)  # the cursor stayed on its endpoint, now further down
        await pilot.pause()
        shown = rows(table)
        p95 = screen_column(screen, "p95")
        assert [r[1] for r in shown[:2]] == ["fleet-120", "fleet-060"]
        assert [r[p95] for r in shown[:2]] == ["2000ms", "1500ms"]
        # A filter matching rows that were never on screen shows them with their current values.
        await pilot.press("slash", *"fleet-14")
        await pilot.pause()
        await show(pilot, fleet(**{"fleet-145": {"p95": 0.75}}))
        shown = rows(table)
        assert sorted(r[1] for r in shown) == [f"fleet-14{i}" for i in range(10)]
        assert next(r for r in shown if r[1] == "fleet-145")[p95] == "750ms"
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == FLEET


def line_of(table, name: str) -> str:
    """The table's rendered line (as painted) of the row `name`, which must be in view."""
    y = table.get_row_index(name) - int(table.scroll_y) + 1  # +1: the header line
    return table.render_line(y).text


async def test_a_cell_shows_each_new_value_as_painted(tmp_path: Path) -> None:
    """Cells that did not change are painted from their last rendering; those that did are not."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        assert " 10ms " in line_of(table, "fleet-001")
        await show(pilot, fleet(**{"fleet-001": {"p95": 0.25}}))
        assert " 250ms " in line_of(table, "fleet-001")
        assert " 10ms " in line_of(table, "fleet-002")
        await show(pilot, fleet())  # back to the first value: painted again, not the one before
        assert " 10ms " in line_of(table, "fleet-001") and "250ms" not in line_of(table, "fleet-001")
        await show(pilot, fleet(**{"fleet-001": {"health": "down"}}))  # moves to the top row
        assert table.get_row_index("fleet-001") == 0
        assert "✖ down" in line_of(table, "fleet-001") and "fleet-001" in line_of(table, "fleet-001")
        assert "● up" in line_of(table, "fleet-000")


async def test_a_filter_shows_exactly_the_matching_endpoints_while_snapshots_arrive(tmp_path: Path) -> None:
    first = fleet(**{"fleet-010": {"health": "down"}, "fleet-130": {"health": "down"}})
    async with overview(tmp_path, first) as (pilot, screen):
        table = screen.table
        await pilot.press("slash", *"down")
        await pilot.pause()
        assert sorted(r[1] for r in rows(table)) == ["fleet-010", "fleet-130"]
        # The next snapshot: one recovers, another goes down; the filter follows at once.
        await show(pilot, fleet(**{"fleet-010": {"health": "down"}, "fleet-070": {"health": "down"}}))
        shown = rows(table)
        assert sorted(r[1] for r in shown) == ["fleet-010", "fleet-070"]
        assert all(r[0] == "✖ down" for r in shown)
        assert str(table.border_subtitle) == f"2/{FLEET} match “down”"
        # A wider filter while snapshots keep coming: every match, in order, the cursor on its endpoint.
        await pilot.press(*["backspace"] * 4, *"fleet-1")
        await pilot.pause()
        await pilot.press("enter")  # back to the table, the filter kept
        table.move_cursor(row=table.get_row_index("fleet-112"), animate=False)
        await show(pilot, fleet(**{"fleet-149": {"health": "down"}}))
        matching = sorted(f"fleet-{i:03d}" for i in range(FLEET - 1) if "fleet-1" in f"fleet-{i:03d}")
        expected = ["fleet-149", *matching]
        assert [r[1] for r in rows(table)] == expected
        assert screen.selected_endpoint() == "fleet-112"
        await pilot.press("slash", "escape")
        await pilot.pause()
        await show(pilot, fleet(**{"fleet-050": {"health": "down"}}))
        assert [r[1] for r in rows(table)][:2] == ["fleet-050", "fleet-000"]
        assert table.row_count == FLEET


def painted(table) -> list[list[tuple[str, object]]]:
    """Every line as painted: its segments' text and style (meta included: what a click reports)."""
    return [[(s.text, s.style) for s in table.render_line(y)] for y in range(table.size.height)]


async def test_each_cell_is_painted_as_datatable_paints_it(tmp_path: Path) -> None:
    """The table renders a cell that fits its line without DataTable's layout machinery; every line it
    paints is DataTable's own: header, fixed columns, zebra rows, the cursor's and the hovered row,
    styled, plain and empty cells, names cut at a narrow column's width."""
    base = sample.snapshot()
    # Names as wide as the name column (22 cells, 16 when narrow), one cell less and one more.
    names = [f"wide-{'x' * (n - 5)}" for n in (15, 16, 17, 21, 22, 23)]
    wide = [dataclasses.replace(e, name=name) for e, name in zip(fleet().endpoints, names, strict=False)]
    mixed = dataclasses.replace(base, endpoints=[*base.endpoints, *wide, *fleet().endpoints[:10]])
    async with overview(tmp_path, mixed) as (pilot, screen):
        table = screen.table
        for width in (160, 100):  # wide, then narrow: other columns, shorter names
            await pilot.resize_terminal(width, 30)
            await show(pilot, mixed)
            table.move_cursor(row=3, animate=False)
            table.hover_coordinate = Coordinate(5, 2)
            await pilot.pause()
            ours = painted(table)
            table.fast_cells = False
            table._clear_caches()
            theirs = painted(table)
            table.fast_cells = True
            table._clear_caches()
            assert "✖ down" in "".join(text for line in ours for text, _ in line)
            assert ours == theirs
            # Where a row and a cell are (what a cursor move repaints) is where DataTable puts them.
            for row in (0, 3, table.row_count - 1):
                assert table._get_row_region(row) == DataTable._get_row_region(table, row)
                for column in (0, 2, len(table.columns) - 1):
                    cell = Coordinate(row, column)
                    assert table._get_cell_region(cell) == DataTable._get_cell_region(table, cell)


async def test_keys_typed_faster_than_frames_while_snapshots_arrive(tmp_path: Path) -> None:
    """Filter keys with a snapshot after each, every one handled without waiting for a frame, then the
    last keys after the last snapshot: once idle, exactly the matching endpoints in order, each with its
    newest values (those out of view when that snapshot came too), the cursor on its endpoint."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        app, table = pilot.app, screen.table
        table.move_cursor(row=table.get_row_index("fleet-110"), animate=False)
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)

        async def handled(snapshot: EngineSnapshot | None) -> None:
            for _ in range(5000):  # until the key and the snapshot are applied, however slow the machine
                if table.filter_text == bar.value and (snapshot is None or app.snapshot is snapshot):
                    return
                await asyncio.sleep(0.001)
            raise AssertionError("a key or a snapshot was never applied")

        for i, key in enumerate("fleet-"):
            bar.insert_text_at_cursor(key)
            # Down, up, down again: each key's matches come from a different order.
            changed = {
                "fleet-115": {"health": "down" if i % 2 == 0 else "up"},
                "fleet-119": {"p95": 0.1 * (i + 1)},
            }
            snapshot = fleet(**changed)
            app.post_message(SnapshotReceived(snapshot))
            await handled(snapshot)
        for key in "11":
            bar.insert_text_at_cursor(key)
            await handled(None)
        await pilot.pause()
        shown = rows(table)
        assert [r[1] for r in shown] == [f"fleet-11{i}" for i in range(10)]  # fleet-115 is up again
        assert next(r for r in shown if r[1] == "fleet-119")[screen_column(screen, "p95")] == "600ms"
        assert screen.selected_endpoint() == "fleet-110"
        assert str(table.border_subtitle) == f"10/{FLEET} match “fleet-11”"


async def test_a_cell_whose_text_stays_takes_its_new_colour(tmp_path: Path) -> None:
    """4.96 % and 5.04 % both read 5.0 %: past the 5 % threshold the cell turns the colour of `down`."""
    async with overview(tmp_path, fleet(**{"fleet-001": {"error_ratio": 0.0496}})) as (pilot, screen):
        table = screen.table

        def colour() -> object:
            strip = table.render_line(table.get_row_index("fleet-001") - int(table.scroll_y) + 1)
            return next(s.style.color for s in strip if "5.0%" in s.text and s.style is not None)

        degraded = colour()
        await show(pilot, fleet(**{"fleet-001": {"error_ratio": 0.0504}}))
        assert colour() != degraded
        await show(pilot, fleet(**{"fleet-001": {"error_ratio": 0.0496}}))
        assert colour() == degraded


async def test_a_snapshot_during_a_keystroke_is_shown_after_its_frame(tmp_path: Path) -> None:
    """A snapshot that arrives between a filter keystroke and its frame waits for that frame: once idle
    the table shows exactly the matches, with the snapshot's values, in the order of those values
    (one moved to the top), the cursor still on its endpoint."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        app, table = pilot.app, screen.table
        screen.sort_by("p95", reverse=True)  # slowest first (ties: names in reverse)
        table.move_cursor(row=table.get_row_index("fleet-127"), animate=False)
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        bar.insert_text_at_cursor("fleet-12")
        for _ in range(5000):  # the keystroke applied; its frame comes after this task yields for long
            if table.filter_text == "fleet-12":
                break
            await asyncio.sleep(0.001)
        newest = fleet(**{"fleet-125": {"p95": 0.9}, "fleet-003": {"p95": 0.8}})
        app.post_message(SnapshotReceived(newest))
        await pilot.pause()
        await pilot.pause()
        assert app.snapshot is newest
        shown = rows(table)
        assert [r[1] for r in shown] == ["fleet-125", *(f"fleet-12{i}" for i in range(9, -1, -1) if i != 5)]
        assert shown[0][screen_column(screen, "p95")] == "900ms"
        assert screen.selected_endpoint() == "fleet-127"
        assert str(table.border_subtitle) == f"10/{FLEET} match “fleet-12”"


async def test_the_filter_bar_opens_shows_what_is_typed_and_closes(tmp_path: Path) -> None:
    """Typing repaints the bar alone (no layout of the screen per key); opening and closing it still
    lay the screen out: the bar appears above the footer, and the table takes its line back."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table, bar = screen.table, screen.query_one(FilterBar)
        height = table.region.height
        await pilot.press("slash")
        await pilot.pause()
        assert bar.region.height == 1 and table.region.height == height - 1
        assert screen.get_widget_at(bar.region.x + 1, bar.region.y)[0] is bar
        await pilot.press(*"fleet-1")
        await pilot.pause()
        assert "fleet-1" in "".join(s.text for s in bar.render_line(0))
        assert table.row_count == 50 and table.region.height == height - 1
        bar.insert_text_at_cursor("x" * 200)  # wider than the screen: the bar scrolls to the cursor
        await pilot.press(*"END")
        await pilot.pause()
        assert "xxxEND" in "".join(s.text for s in bar.render_line(0)) and table.row_count == 0
        await pilot.press("escape")
        await pilot.pause()
        assert not bar.display and table.region.height == height and table.row_count == FLEET


async def test_a_snapshot_keeping_unchanged_endpoints_as_the_same_objects(tmp_path: Path) -> None:
    """The engine hands out an unchanged endpoint's snapshot as the same object. A snapshot that keeps
    every other endpoint's object and renews one moves that one in the sort order and in what a filter
    matches; an endpoint left out loses its row."""
    first = fleet()
    async with overview(tmp_path, first) as (pilot, screen):
        table = screen.table
        screen.sort_by("p95", reverse=True)  # slowest first
        await pilot.pause()
        kept = [e for e in first.endpoints if e.name != "fleet-003"]
        i = next(i for i, e in enumerate(kept) if e.name == "fleet-140")
        kept[i] = dataclasses.replace(kept[i], p95=0.5, model="zeta")
        await show(pilot, dataclasses.replace(first, endpoints=kept))
        names = [r[1] for r in rows(table)]
        assert names[0] == "fleet-140" and "fleet-003" not in names and table.row_count == FLEET - 1
        await pilot.press("slash", *"zeta")
        await pilot.pause()
        assert [r[1] for r in rows(table)] == ["fleet-140"]


async def test_a_held_snapshot_is_shown_although_the_keystrokes_frame_never_came(tmp_path: Path) -> None:
    """A help screen opened and closed before the keystroke's frame was painted takes the release with
    it (Textual drops callbacks queued on a screen that goes): the overview still shows new values."""
    from mlops_console.tui.screens.help import HelpScreen

    async with overview(tmp_path, fleet()) as (pilot, screen):
        app, table = pilot.app, screen.table
        await pilot.press("slash")
        table.set_filter("fleet-1")
        help_screen = HelpScreen(screen)
        app.push_screen(help_screen)
        for _ in range(1000):  # the release is queued on the help screen
            if help_screen._callbacks:
                break
            await asyncio.sleep(0)
        app.pop_screen()
        await settle(pilot)
        await show(pilot, fleet(**{"fleet-101": {"p95": 0.9}}))

        def p95() -> str:
            return next(r for r in rows(table) if r[1] == "fleet-101")[screen_column(screen, "p95")]

        for _ in range(200):
            if p95() == "900ms":
                break
            await pilot.pause(0.05)
        assert p95() == "900ms"


async def test_a_resize_across_the_narrow_width_while_scrolled_keeps_every_row(tmp_path: Path) -> None:
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        table.scroll_end(animate=False)
        await pilot.pause()
        await show(pilot, fleet(**{"fleet-001": {"p95": 0.25}}))
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        assert table.narrow and table.row_count == FLEET
        assert "fleet-001" in [r[1] for r in rows(table)]


async def test_plain_string_cells_are_painted_as_datatable_reads_them() -> None:
    """A `str` cell is markup to DataTable: `[b]` bolds, `:smile:` is an emoji. Plain strings skip the
    markup parser; every other one is still read as DataTable reads it."""
    from textual.app import App, ComposeResult

    from mlops_console.tui.widgets.one_line_table import OneLineTable

    class Table(App):
        def compose(self) -> ComposeResult:
            yield OneLineTable(cursor_type="row", zebra_stripes=True)

    cells = ["12ms", "[b]bold[/b]", ":smile: x", "a:b", "[red]", "5.0%", "é wide 日本", "ok"]
    app = Table()
    async with app.run_test(size=(120, 8)) as pilot:
        table = app.query_one(OneLineTable)
        table.fixed_columns = 1
        for i in range(len(cells)):
            table.add_column(f"c{i}", key=f"c{i}", width=12)
        table.add_row(*cells, key="a")
        table.add_row(*reversed(cells), key="b")
        table._rows_version += 1  # OneLineTable's rows change through its subclass, which says so
        table.refresh()
        await pilot.pause()
        ours = painted(table)
        table.fast_cells = False
        table._clear_caches()
        theirs = painted(table)
        assert "bold" in "".join(text for line in ours for text, _ in line)
        assert "[b]" not in "".join(text for line in ours for text, _ in line)
        assert ours == theirs


async def test_a_new_frame_renders_no_cell_whose_value_stayed(tmp_path: Path) -> None:
    """A frame after a snapshot repaints the table from the cells it rendered: only a cell whose value
    changed is rendered again (the fixed columns, health and endpoint, included)."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        region = table.size.region
        table.render_lines(region)
        rendered: list[tuple[int, int]] = []
        render_one_line = table._render_one_line

        def counting(row_index: int, column_index: int, *args: Any) -> Any:
            rendered.append((row_index, column_index))
            return render_one_line(row_index, column_index, *args)

        table._render_one_line = counting  # type: ignore[method-assign]
        table._update_count += 1  # what a snapshot's cell update does: every line is drawn again
        lines = table.render_lines(region)
        assert "fleet-000" in "".join(s.text for s in lines[2])  # below the border and the header
        assert rendered == []
        await show(pilot, fleet(**{"fleet-001": {"p95": 0.25}}))  # one cell changed: that one alone
        assert set(rendered) == {(table.get_row_index("fleet-001"), screen_column(screen, "p95"))}


async def test_a_filter_every_endpoint_matches_keeps_every_row_in_order(tmp_path: Path) -> None:
    """A first key found in every endpoint (`f` of fleet) keeps the table's rows and order, follows a
    snapshot that reorders them, and the next key narrows to exactly its matches."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        table = screen.table
        table.move_cursor(row=table.get_row_index("fleet-007"), animate=False)
        before = [r[1] for r in rows(table)]
        await pilot.press("slash", "f")
        await pilot.pause()
        assert [r[1] for r in rows(table)] == before and table.row_count == FLEET
        assert str(table.border_subtitle) == f"{FLEET}/{FLEET} match “f”"
        await show(pilot, fleet(**{"fleet-140": {"health": "down"}}))
        table.scroll_home(animate=False)
        await pilot.pause()
        assert [r[1] for r in rows(table)][:2] == ["fleet-140", "fleet-000"]
        assert table.row_count == FLEET and screen.selected_endpoint() == "fleet-007"
        await pilot.press(*"leet-14")
        await pilot.pause()
        assert [r[1] for r in rows(table)] == ["fleet-140", *(f"fleet-14{i}" for i in range(1, 10))]
