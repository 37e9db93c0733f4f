"""The overview's endpoint table: one row per endpoint, sorted and filtered on every snapshot.

Its cost has to stay near a bare `DataTable`'s at ten endpoints and below it at ten thousand, so:
- only the rows in view are rendered from their snapshot; the others are marked out of date and
  filled in when they scroll into view. Sorting and filtering read the snapshots themselves, so they
  always see every endpoint's current values;
- the row order is kept here and handed to the table in one step (`_show_order`), not row by row:
  `add_row` and `remove_row` cost O(rows) each, which made a filter keystroke at 10,000 rows take
  seconds;
- a rendered cell is reused while its value is the same object (the table re-renders every cell
  whenever any cell changed).

Every column has a fixed width and every row is one line, which the overrides of DataTable's private
methods below rely on (textual is pinned below 9).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, Row, RowKey

from mlops_console.core import formatting
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.tui.text import DASH, clean, firing_and_pending, safe_text, sparkline

if TYPE_CHECKING:
    from mlops_console.tui.app import MlopsConsole

NARROW_WIDTHS = {"name": 16, "version": 5, "p95": 6, "rps": 6, "err": 5, "drift": 5}
"""Narrower cells below the overview's narrow width, so the drift column fits 80 columns."""
SPARK_WIDTH = 14
HEALTH_ORDER = {"down": 0, "degraded": 1, "loading": 2, "unknown": 3, "up": 4}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    narrow: bool
    sort: Callable[[EndpointSnapshot], Any]


def _num(value: float | None) -> float:
    return float("inf") if value is None else value


def _current(e: EndpointSnapshot, latency: float | None) -> float | None:
    """A latency percentile, or None while the endpoint is down: it then describes the time before."""
    return None if e.health == "down" else latency


def _drift_order(e: EndpointSnapshot) -> tuple[int, float]:
    """Drifting endpoints first, then by their drifting share; endpoints without a verdict last."""
    q = e.quality
    if q is None or q.drift_share is None:
        return (2, 0.0)
    return (0 if q.dataset_drift else 1, -q.drift_share)


def _drift_cell(e: EndpointSnapshot, colors: dict[str, str]) -> Text:
    """`⚠3/4` when the dataset drifts, `1/4` when some features do, `ok`, `…` before a verdict."""
    q = e.quality
    if q is None:
        return Text(DASH, style="dim")
    judged = sum(1 for f in q.features if f.verdict in ("drift", "ok"))
    if q.drift_share is None or not judged:
        return Text("…", style="dim")
    if q.dataset_drift:
        return Text(f"⚠{len(q.drifted)}/{judged}", style=f"bold {colors['down']}")
    if q.drifted:
        return Text(f"{len(q.drifted)}/{judged}", style=colors["degraded"])
    return Text("ok")


COLUMNS: list[Column] = [
    Column("health", "health", 10, True, lambda e: HEALTH_ORDER.get(e.health, 9)),
    Column("name", "endpoint", 22, True, lambda e: e.name),  # 16 when narrow
    Column("model", "model@alias", 22, False, lambda e: (e.model or "", e.alias or "")),
    Column("want", "want", 5, False, lambda e: e.expected_version or ""),
    Column("serves", "serves", 7, False, lambda e: (not e.version_mismatch, e.served_version or "")),
    Column("version", "ver", 7, True, lambda e: (not e.version_mismatch, e.expected_version or "")),
    Column("p50", "p50", 7, False, lambda e: _num(_current(e, e.p50))),
    Column("p95", "p95", 7, True, lambda e: _num(_current(e, e.p95))),
    Column("p99", "p99", 7, False, lambda e: _num(_current(e, e.p99))),
    Column("rps", "req/s", 7, True, lambda e: -(e.rps or 0.0)),
    Column("err", "err%", 6, True, lambda e: -(e.error_ratio or 0.0)),
    Column("spark", "latency", SPARK_WIDTH, False, lambda e: _num(e.p50)),
    Column("drift", "drift", 7, True, lambda e: _drift_order(e)),
    Column("last_ok", "last ok", 7, True, lambda e: -(e.last_ok_at or 0.0)),
]


class EndpointTable(DataTable):
    """Endpoints sorted by `sort_key`, those matching `filter_text`; cells rendered when in view."""

    def __init__(self, **kwargs: Any) -> None:
        # Set before DataTable's own: its set-up may already reach the overrides below.
        self._rows_version = 0
        self._ordered: tuple[int, list[Row], list[tuple[RowKey, int]]] | None = None
        self._cells_rendered: LRUCache[tuple[Any, ...], tuple[Any, list[list[Segment]]]] = LRUCache(4096)
        self._order: list[str] = []  # row keys as shown, top to bottom
        self._order_on: dict[str, Any] = {}  # row key -> sort value `_order` was computed from
        self._shown: dict[str, dict[str, Any]] = {}  # row key -> cell values shown
        self._stale: set[str] = set()  # rows whose cells predate their endpoint's snapshot
        self._row_keys: dict[str, RowKey] = {}
        super().__init__(**kwargs)
        self.narrow: bool | None = None
        self.filter_text = ""
        self.sort_key = "health"
        self.sort_reverse = False
        self._snapshot: EngineSnapshot | None = None
        self._snapshots: dict[str, EndpointSnapshot] = {}
        self._haystacks: dict[tuple[str | None, ...], str] = {}
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
        super().clear(columns)
        self._order, self._order_on, self._shown, self._row_keys = [], {}, {}, {}
        self._stale.clear()
        self._rows_version += 1
        return self

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cells_rendered.clear()

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
        self._order_on = {}  # reorder on the values as they are now
        if self._snapshot is not None:
            self.show(self._snapshot)
        self.refresh()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self._snapshot is not None:
            self.show(self._snapshot)

    # -- snapshots -----------------------------------------------------------------------------------
    def _matches(self, e: EndpointSnapshot) -> bool:
        fields = (e.name, e.model, e.alias, e.health, e.url, e.served_version, e.expected_version)
        haystack = self._haystacks.get(fields)
        if haystack is None:
            if len(self._haystacks) > 4 * max(len(self._snapshots), 1000):
                self._haystacks.clear()  # endpoints came and went: drop the ones gone
            haystack = " ".join(clean(v) for v in fields if v).lower()
            self._haystacks[fields] = haystack
        return self.filter_text.lower() in haystack

    def show(self, snapshot: EngineSnapshot) -> None:
        """Rows added, removed and reordered as needed; only the cells in view re-rendered."""
        self._snapshot = snapshot
        self._snapshots = {e.name: e for e in snapshot.endpoints}
        wanted: Sequence[EndpointSnapshot] = snapshot.endpoints
        if self.filter_text:
            wanted = [e for e in wanted if self._matches(e)]
        sort = self._sort_column().sort
        order_on = {e.name: sort(e) for e in wanted}
        if order_on != self._order_on:
            self._order_on = order_on
            order = sorted(order_on, key=lambda name: (order_on[name], name), reverse=self.sort_reverse)
            if order != self._order:
                self._show_order(order)
        self._stale.update(order_on)
        self._update_rows_in_view()
        if not self.row_count:
            self.border_subtitle = "no endpoints match the filter" if self.filter_text else "no endpoints"
        elif self.filter_text:
            self.border_subtitle = safe_text(
                f"{len(wanted)}/{len(snapshot.endpoints)} match “{self.filter_text}”"
            )
        else:
            self.border_subtitle = ""

    def _show_order(self, order: list[str]) -> None:
        """Hand the table its rows in this order at once; the cursor stays on its endpoint."""
        selected = self.selected_endpoint()
        keep = set(order)
        for key in [k for k in self._shown if k not in keep]:
            row_key = self._row_keys.pop(key)
            del self._shown[key], self._data[row_key], self.rows[row_key]
            self._stale.discard(key)
        columns = [c.key for c in self.columns_shown()]
        column_keys = [ColumnKey(c) for c in columns]
        for key in order:
            if key not in self._shown:
                # Filled in when the row comes into view; the name shows meanwhile.
                cells: dict[str, Any] = dict.fromkeys(columns, "")
                cells["name"] = Text(clean(key, limit=40), end="")
                row_key = self._row_keys[key] = RowKey(key)
                self._shown[key] = cells
                self._data[row_key] = dict(zip(column_keys, cells.values(), strict=True))
                self.rows[row_key] = Row(row_key, 1)
                self._stale.add(key)
        row_keys = self._row_keys
        self._row_locations = TwoWayDict({row_keys[key]: i for i, key in enumerate(order)})
        self._order = order
        self._rows_version += 1
        self._update_count += 1
        self._require_update_dimensions = True
        self.refresh(layout=True)
        self.check_idle()
        if selected is not None and selected in self._shown:
            self.move_cursor(row=self._row_locations.get(row_keys[selected]), animate=False)
        else:
            self.cursor_coordinate = self.cursor_coordinate  # kept within the rows left

    def _update_rows_in_view(self) -> None:
        """Bring the rows on screen up to date with their endpoints' latest snapshot."""
        if not self._stale or not self.is_mounted:
            return
        now = self.console.clock()
        columns = [c.key for c in self.columns_shown()]
        column_keys = [ColumnKey(c) for c in columns]
        changed = False
        for key in self.rows_in_view():
            if key not in self._stale:
                continue
            self._stale.discard(key)
            e = self._snapshots.get(key)
            previous = self._shown.get(key)
            if e is None or previous is None:
                continue
            cells = self._cells(e, now)
            data = self._data[self._row_keys[key]]
            for column, column_key in zip(columns, column_keys, strict=True):
                if cells[column] != previous[column]:
                    data[column_key] = cells[column]
                    changed = True
                else:
                    cells[column] = previous[column]  # the same object: its rendering is reused
            self._shown[key] = cells
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
            "health": app.health_text(e.health),
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
            "drift": _drift_cell(e, colors),
            "last_ok": Text(formatting.age(e.last_ok_at, now), style=colors["down"] if stale else ""),
        }

    # -- DataTable internals (fixed widths, one line per row) ------------------------------------------
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._update_rows_in_view()

    def on_resize(self) -> None:
        self._update_rows_in_view()

    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        # Every column has a fixed width and every row is one line without a label: DataTable would
        # render each cell of each new row to measure widths it then ignores (seconds for 10,000 rows).
        if not any(column.auto_width for column in self.columns.values()):
            new_rows = ()
        super()._update_dimensions(new_rows)

    def _rows_in_order(self) -> tuple[list[Row], list[tuple[RowKey, int]]]:
        # DataTable rebuilds both lists, O(rows), whenever any cell changes; here only when rows do.
        if self._ordered is None or self._ordered[0] != self._rows_version:
            rows = [self.rows[self._row_keys[key]] for key in self._order]
            self._ordered = (self._rows_version, rows, [(row.key, 0) for row in rows])
        return self._ordered[1], self._ordered[2]

    @property
    def ordered_rows(self) -> list[Row]:
        return self._rows_in_order()[0]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        return self._rows_in_order()[1]

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        column_key = self._column_locations.get_key(column_index)
        row_key = self._row_locations.get_key(row_index)
        if column_key is None:  # the row labels' column (none here)
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value: Any = self.columns[column_key].label if row_index < 0 else self._data[row_key][column_key]  # type: ignore[index]
        key = (
            row_key,
            column_key,
            row_index,
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.fixed_columns,
        )
        cached = self._cells_rendered.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cells_rendered[key] = (value, lines)
        return lines
