"""The overview's endpoint table: one row per endpoint, sorted and filtered on every snapshot.

Its cost has to stay near a bare `DataTable`'s at ten endpoints and below it at ten thousand, and a
filter keystroke at ten thousand has to answer within a frame, so:
- only the rows in view are rendered from their snapshot; the others are filled in when they scroll
  into view. Sorting and filtering read the snapshots (`EndpointIndex`), so they always see every
  endpoint's current values;
- the row order is kept here and handed to the table in one step (`_show_order`), not row by row
  (`add_row` and `remove_row` cost O(rows) each), from rows kept for every endpoint, shown or not: a
  filter builds none;
- a rendered cell is reused while its value is the same object (the table re-renders every cell
  whenever any cell changed); rows and cells are drawn by `OneLineTable`, which relies on every
  column having a fixed width and every row being one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.widgets.data_table import ColumnKey, Row, RowKey

from mlops_console.core import formatting
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.tui.collector import hold_collections, release_collections
from mlops_console.tui.text import DASH, clean, firing_and_pending, safe_text, sparkline
from mlops_console.tui.widgets.endpoint_columns import COLUMNS, NARROW_WIDTHS, SPARK_WIDTH, Column, drift_cell
from mlops_console.tui.widgets.endpoint_index import EndpointIndex
from mlops_console.tui.widgets.one_line_table import OneLineTable

HOLD_AT_MOST = 0.25
"""Seconds a snapshot waits for a filter keystroke's frame at most."""
TYPING_PAUSE = 0.3
"""Seconds after a filter keystroke's frame, without another keystroke, before collections resume."""
COLLECT_AFTER_AT_MOST = 1.0
"""Seconds garbage collections wait for typing into the filter to pause at most."""

if TYPE_CHECKING:
    from mlops_console.tui.app import MlopsConsole

_Shown = tuple[list[str], dict[RowKey, Row], dict[RowKey, Any], TwoWayDict[RowKey, int]]
"""A row order and the table's rows, data and row locations for it."""


class EndpointTable(OneLineTable):
    """Endpoints sorted by `sort_key`, those matching `filter_text`; cells rendered when in view."""

    def __init__(self, **kwargs: Any) -> None:
        # Set before DataTable's own: its set-up may already reach the overrides.
        self._order: list[str] = []  # row keys as shown, top to bottom
        # (order, rows, data, locations) of every endpoint in the sort's order, while that order stays.
        self._shown_all: (
            tuple[list[str], dict[RowKey, Row], dict[RowKey, Any], TwoWayDict[RowKey, int]] | None
        )
        self._shown_all = None
        # Every endpoint's row, shown or filtered out: a filter hands the table rows it already has.
        self._rows_of: dict[str, tuple[RowKey, Row, dict[ColumnKey, Any]]] = {}
        self._generation = 0  # snapshots shown so far
        self._fresh: dict[str, int] = {}  # row key -> the generation its cells were made from
        super().__init__(**kwargs)
        self.narrow: bool | None = None
        self.filter_text = ""
        self.sort_key = "health"
        self.sort_reverse = False
        self._snapshot: EngineSnapshot | None = None
        self._holding = False  # a filter keystroke's frame is not painted yet
        self._hold = 0  # which keystroke's hold that is
        self._keystrokes = 0  # filter keystrokes so far
        self._collections_held = 0  # the collector's hold taken while typing (0: none)
        self._held: EngineSnapshot | None = None  # the newest snapshot waiting for it
        self._index = EndpointIndex()
        self._intervals: tuple[Any, dict[str, float]] | None = None  # (settings, name -> interval)

    @property
    def console(self) -> MlopsConsole:
        return self.app  # type: ignore[return-value]

    # -- columns -------------------------------------------------------------------------------------
    def columns_shown(self) -> list[Column]:
        return [c for c in COLUMNS if c.narrow] if self.narrow else [c for c in COLUMNS if c.key != "version"]

    def set_narrow(self, narrow: bool) -> bool:
        """(Re)create the columns when the width class changed; True if it did."""
        if narrow == self.narrow:
            return False
        self.narrow = narrow
        self.clear(columns=True)
        for column in self.columns_shown():
            width = NARROW_WIDTHS.get(column.key, column.width) if narrow else column.width
            self.add_column(self._label(column), key=column.key, width=width)
        return True

    def clear(self, columns: bool = False) -> EndpointTable:
        # Ours first: DataTable's clear scrolls to the top, which renders the rows in view, and the
        # old rows under new columns (a resize across the narrow width, scrolled) had no such cells.
        self._order, self._rows_of, self._fresh, self._shown_all = [], {}, {}, None
        super().clear(columns)  # empties `rows` and `_data` in place: those kept for every endpoint too
        self._rows_version += 1
        return self

    def _label(self, column: Column) -> Text:
        if column.key != self.sort_key:
            return Text(column.label)
        return Text(column.label + ("▲" if not self.sort_reverse else "▼"), style="bold")

    def _sort_column(self) -> Column:
        return next((c for c in COLUMNS if c.key == self.sort_key), COLUMNS[0])

    def sort_by(self, key: str, reverse: bool) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        for column in self.columns_shown():
            table_column = self.columns.get(ColumnKey(column.key))
            if table_column is not None:
                table_column.label = self._label(column)
        # The header's line is kept until the table changes: new labels over rows that may keep
        # their order (no `_show_order`) would leave the arrow on the column sorted before.
        self._update_count += 1
        if self._snapshot is not None:
            self._index.resort(self._sort_column().sort, reverse)  # on the values as they are now
            self._show_matching()
        self.refresh()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self._held is not None:
            # It came before this keystroke, while an earlier one's frame was due: shown in this frame,
            # not after it. Left waiting, keys typed faster than frames (or each landing between a frame
            # and its release) kept it off the screen for as long as they came, old figures in view.
            snapshot, self._held = self._held, None
            self._apply(snapshot)
        elif self._snapshot is not None:
            self._show_matching()
        self._hold_snapshots()
        self._hold_collections()

    def _hold_collections(self) -> None:
        """No garbage collection while someone types into the filter: until `TYPING_PAUSE` after a
        keystroke's frame with no keystroke since (`COLLECT_AFTER_AT_MOST` at most). A young collection
        cost a keystroke 14-50 ms at 10,000 rows; released right after each frame, it landed on the next
        keystroke instead (see `collector.py`)."""
        if not self.is_mounted:
            return
        self._keystrokes += 1
        keystroke, hold = self._keystrokes, hold_collections()
        if hold and hold != self._collections_held:
            self._collections_held = hold
            # Also when the frame's callback is dropped (a screen popped before it painted).
            self.set_timer(COLLECT_AFTER_AT_MOST, lambda: release_collections(hold))

        def release_unless_typing_on() -> None:
            if keystroke == self._keystrokes:
                release_collections(hold)

        self.call_after_refresh(self.set_timer, TYPING_PAUSE, release_unless_typing_on)

    # -- snapshots -----------------------------------------------------------------------------------
    def _hold_snapshots(self) -> None:
        """Until the frame after a filter keystroke is painted, a new snapshot waits: applying and
        painting it first delayed the keystroke's frame by up to a frame of its own at 10,000 rows.
        It waits for that one frame only: the next keystroke applies it if it is still waiting."""
        if not self._holding and self.is_mounted:
            self._holding = True
            self._hold += 1
            hold = self._hold
            self.call_after_refresh(self._release_snapshots, hold)
            # Textual drops an after-refresh callback queued on a screen popped before it painted (a
            # help screen opened and closed at once): the overview would stay frozen on one snapshot.
            self.set_timer(HOLD_AT_MOST, lambda: self._release_snapshots(hold))

    def _release_snapshots(self, hold: int) -> None:
        if hold != self._hold or not self._holding:
            return  # released already: a later hold is another keystroke's
        self._holding = False
        if self._held is not None:
            self.call_later(self._show_held)  # after the other callbacks of the frame just painted

    def _show_held(self) -> None:
        if self._held is not None and not self._holding:  # holding again: it came after that keystroke
            snapshot, self._held = self._held, None
            self.show(snapshot)

    def on_unmount(self) -> None:
        release_collections(self._collections_held)  # its timers stop with it

    def show(self, snapshot: EngineSnapshot) -> None:
        """Rows added, removed and reordered as needed; only the cells in view re-rendered."""
        if self._holding:
            self._held = snapshot  # only the newest one waiting is shown
            return
        self._held = None
        self._apply(snapshot)

    def _apply(self, snapshot: EngineSnapshot) -> None:
        self._snapshot = snapshot
        self._generation += 1
        self._index.update(snapshot.endpoints, self._sort_column().sort, self.sort_reverse)
        gone = self._rows_of.keys() - self._index.snapshots.keys()
        for key in gone:
            del self._rows_of[key]
            self._fresh.pop(key, None)
        self._show_matching()

    def _show_matching(self) -> None:
        order = self._index.matching(self.filter_text)
        if order is not self._order and order != self._order:
            self._show_order(order)
        self._update_rows_in_view()
        total = len(self._index.snapshots)
        if not self.row_count:
            self.border_subtitle = "no endpoints match the filter" if self.filter_text else "no endpoints"
        elif self.filter_text:
            self.border_subtitle = safe_text(f"{len(order)}/{total} match “{self.filter_text}”")
        else:
            self.border_subtitle = ""

    def _show_order(self, order: list[str]) -> None:
        """Hand the table its rows in this order at once; the cursor stays on its endpoint."""
        selected = self.selected_endpoint()
        rows_of = self._rows_of
        if len(rows_of) < len(self._index.snapshots):
            column_keys = [ColumnKey(c.key) for c in self.columns_shown()]
            name_key = ColumnKey("name")
            for key in order:
                if key not in rows_of:
                    # Filled in when the row comes into view; the name shows meanwhile.
                    data: dict[ColumnKey, Any] = dict.fromkeys(column_keys, "")
                    data[name_key] = Text(clean(key, limit=40), end="")
                    row_key = RowKey(key)
                    rows_of[key] = (row_key, Row(row_key, 1), data)
        if self._shown_all is not None and self._shown_all[0] is order:
            _, self.rows, self._data, self._row_locations = self._shown_all
        else:
            shown = [rows_of[key] for key in order]
            self.rows = {row_key: row for row_key, row, _ in shown}
            self._data = {row_key: data for row_key, _, data in shown}
            self._row_locations = TwoWayDict({row_key: i for i, (row_key, _, _) in enumerate(shown)})
            if order is self._index.sorted:
                # Every endpoint in the sort's order: kept until it changes, so that clearing a filter
                # does not hash 10,000 row keys three times again (a quarter of the keystroke).
                self._shown_all = (order, self.rows, self._data, self._row_locations)
        self._order = order
        self._rows_version += 1
        self._update_count += 1
        # The scrollable size now, not when idle: setting it lays the screen out again (only when the
        # row count changed), and doing so after this frame cost every keystroke a second full frame.
        self._update_dimensions(())
        self.refresh()
        if selected is not None and selected in self._row_locations:
            self.move_cursor(row=self._row_locations.get(rows_of[selected][0]), animate=False)
        else:
            self.cursor_coordinate = self.cursor_coordinate  # kept within the rows left

    def _update_rows_in_view(self) -> None:
        """Bring the rows on screen up to date with their endpoints' latest snapshot."""
        if not self.is_mounted:
            return
        generation, fresh = self._generation, self._fresh
        stale = [key for key in self.rows_in_view() if fresh.get(key) != generation]
        if not stale:
            return
        now = self.console.clock()
        columns = [c.key for c in self.columns_shown()]
        column_keys = [ColumnKey(c) for c in columns]
        changed = False
        for key in stale:
            fresh[key] = generation
            e = self._index.snapshots.get(key)
            row = self._rows_of.get(key)
            if e is None or row is None:
                continue
            cells, data = self._cells(e, now), row[2]
            for column, column_key in zip(columns, column_keys, strict=True):
                # An unchanged value keeps its object, and with it its rendering. Text equality
                # ignores the base style: 4.96 % and 5.04 % both read "5.0%", in two colours.
                cell, old = cells[column], data[column_key]
                if cell is not old and (
                    cell != old or getattr(cell, "style", None) != getattr(old, "style", None)
                ):
                    data[column_key] = cell
                    changed = True
        if changed:
            self._update_count += 1
            self.refresh()

    def rows_in_view(self) -> list[str]:
        """Keys of the rows on screen (every row is one line high), with a line to spare each side."""
        top = max(int(self.scroll_y) - 1, 0)
        return self._order[top : top + self.size.height + 2]

    def selected_endpoint(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return row_key.value or None

    # -- cells -----------------------------------------------------------------------------------------
    def _interval(self, name: str) -> float:
        settings = self.console.settings
        if self._intervals is None or self._intervals[0] is not settings:
            self._intervals = (settings, {e.name: e.interval for e in settings.endpoints})
        return self._intervals[1].get(name, 5.0)

    def _cells(self, e: EndpointSnapshot, now: float) -> dict[str, Any]:
        app = self.console
        colors = app.theme_colors()
        name = Text(end="")
        name.append_text(safe_text(e.name, limit=40))
        firing, pending = firing_and_pending(e.firing)
        if firing:
            name.append(f" ⚑{len(firing)}", style=f"bold {colors['down']}")
        if pending:
            name.append(f" ⚐{len(pending)}", style=colors["degraded"])
        mismatch_style = f"bold reverse {colors['degraded']}"
        model = safe_text(f"{e.model}@{e.alias}" if e.model and e.alias else e.model or DASH, limit=60)
        if e.version_mismatch:
            version = safe_text(f"{e.expected_version}≠{e.served_version}", mismatch_style)
            serves = safe_text(f"≠{e.served_version}", mismatch_style)
        else:
            version = safe_text(e.served_version or e.expected_version or DASH)
            serves = safe_text(e.served_version or DASH)
        error_style = (
            colors["down"]
            if (e.error_ratio or 0) >= 0.05
            else (colors["degraded"] if (e.error_ratio or 0) > 0 else "")
        )
        stale = e.last_ok_at is None or now - e.last_ok_at > 3 * max(self._interval(e.name), 1.0)

        def latency(seconds: float | None) -> str | Text:
            if e.health == "down":
                return Text(DASH, style="dim")
            # Last good values while their Prometheus cannot answer: shown dimmed with a mark.
            if e.stale and seconds is not None:
                return Text(formatting.latency(seconds) + "~", style="dim")
            return formatting.latency(seconds)

        return {
            # Discovered before the watcher restarted, not found again yet: its alerts are still open.
            "health": app.endpoint_health_text(e),
            "name": name,
            "model": model,
            "want": safe_text(e.expected_version or DASH),
            "serves": serves,
            "version": version,
            "p50": latency(e.p50),
            "p95": latency(e.p95),
            "p99": latency(e.p99),
            "rps": (
                Text(formatting.rate(e.rps) + "~", style="dim")
                if e.stale and e.rps is not None
                else formatting.rate(e.rps)
            ),
            "err": Text(formatting.ratio(e.error_ratio), style=error_style),
            "spark": Text(sparkline(e.latency_history, SPARK_WIDTH), style=colors["accent"]),
            "drift": drift_cell(e, colors),
            "last_ok": Text(formatting.age(e.last_ok_at, now), style=colors["down"] if stale else ""),
        }

    # -- scrolling ---------------------------------------------------------------------------------------
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._update_rows_in_view()

    def on_resize(self) -> None:
        self._update_rows_in_view()
