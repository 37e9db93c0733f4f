"""Typing into the overview's filter: each keystroke's rows are there within the keystroke, and no
garbage collection starts while someone types (one cost a keystroke 14-50 ms at 10,000 rows)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from mlops_console.tui import collector
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.widgets.filter_bar import FilterBar
from tests.test_tui_app import rows, settle
from tests.test_tui_overview_fleet import FLEET, fleet, line_of, overview


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


async def test_a_snapshot_between_keys_typed_faster_than_frames_is_in_the_next_keys_frame(
    tmp_path: Path,
) -> None:
    """Keys typed faster than frames, a snapshot between two of them: the second key's rows, as painted,
    carry that snapshot's values (it waited for the first key's frame, which never came in between).
    Left waiting for the second key's frame, it showed the old figures in it."""
    async with overview(tmp_path, fleet()) as (pilot, screen):
        app, table = pilot.app, screen.table
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        bar.insert_text_at_cursor("fleet-1")  # as a key typed into the bar does it
        # Received as the app receives it, with no turn of the loop (so no frame) since the key.
        newest = fleet(**{"fleet-119": {"p95": 0.6}, "fleet-112": {"health": "down"}})
        app.on_snapshot_received(SnapshotReceived(newest))
        bar.insert_text_at_cursor("1")
        assert [r[1] for r in rows(table)] == ["fleet-112", *(f"fleet-11{i}" for i in range(10) if i != 2)]
        assert " 600ms " in line_of(table, "fleet-119") and "✖ down" in line_of(table, "fleet-112")
        await settle(pilot)  # and nothing older is put back once its frame has been painted
        assert " 600ms " in line_of(table, "fleet-119") and "✖ down" in line_of(table, "fleet-112")
        assert app.snapshot is newest


async def test_collections_wait_while_typing_and_resume_when_it_pauses(tmp_path: Path) -> None:
    assert gc.isenabled()
    async with overview(tmp_path, fleet()) as (pilot, screen):
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        bar.insert_text_at_cursor("fleet-1")  # as a key typed into the bar does it
        assert not gc.isenabled()
        assert names(screen.table) == sorted(f"fleet-1{i:02d}" for i in range(50))
        for _ in range(400):  # typing paused: collections resume
            if gc.isenabled():
                break
            await asyncio.sleep(0.01)
        assert gc.isenabled()
        bar.insert_text_at_cursor("4")
        assert not gc.isenabled()
    assert gc.isenabled()  # the console gone while typing: not left without collections


def test_a_hold_ends_only_its_own_and_leaves_a_disabled_collector_disabled() -> None:
    assert gc.isenabled()
    first = collector.hold_collections()
    assert first and not gc.isenabled()
    assert collector.hold_collections() == first  # typing on: the same hold
    collector.release_collections(first)
    assert gc.isenabled()
    second = collector.hold_collections()
    collector.release_collections(first)  # an earlier hold's timer: this one stays
    assert not gc.isenabled()
    collector.release_collections(second)
    assert gc.isenabled()
    gc.disable()
    try:
        assert collector.hold_collections() == 0
        collector.release_collections(0)
        assert not gc.isenabled()  # disabled by someone else: stays so
    finally:
        gc.enable()
