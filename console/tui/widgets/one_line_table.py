"""A DataTable whose columns all have fixed widths and whose rows are all one line high, drawn with less
of DataTable's general machinery.

DataTable serves rows of any height and columns sized to their content, so it measures every cell of
every new row, sums row heights to find where a row is (O(rows) per cursor move), and rebuilds its row
lists after every cell update. Under a fixed layout none of that is needed, and a frame of the
overview at 10,000 endpoints spent most of its time in it:
- a row's place is its index (`_get_row_region`, `_y_offsets`), the row lists are rebuilt only when
  the rows change (`_rows_version`), and nothing is measured (`_update_dimensions`);
- a cell is rendered once per value object and position (`_cell_segments`), without Rich's layout
  machinery when it fits its line (`render_one_line`), and kept simplified;
- a data line is its cells side by side (`_data_line`, `one_line_frame.py`), with what every line of
  a frame shares (size, scroll offset, cursor, styles: each lookup walks the widget's ancestors)
  looked up once per frame, the fixed columns drawn once (DataTable draws them twice and crops one
  copy away) and no crop, pad or simplify pass over a line that starts unscrolled.

`fast_cells = False` paints every line through DataTable's own code; a test compares both, line by
line and style by style. These override private methods of DataTable (textual is pinned below 9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import Row, RowKey

from mlops_console.tui.widgets.one_line_cell import looks_key, render_one_line
from mlops_console.tui.widgets.one_line_frame import LineFrame, assemble, join

_MISSING: Any = object()


def _plain(value: str) -> bool:
    """True for a string that `Text.from_markup` (how DataTable reads a `str` cell) leaves as it is."""
    return "[" not in value and ":" not in value and "\n" not in value


class _OneLineOffsets(Sequence[tuple[RowKey, int]]):
    """DataTable's line -> (row key, line in row) list, for rows of one line, without building it."""

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, y: int) -> tuple[RowKey, int]: ...
    @overload
    def __getitem__(self, y: slice) -> list[tuple[RowKey, int]]: ...
    def __getitem__(self, y: int | slice) -> tuple[RowKey, int] | list[tuple[RowKey, int]]:
        if isinstance(y, slice):
            return [(row.key, 0) for row in self._rows[y]]
        return (self._rows[y].key, 0)

    def clear(self) -> None:
        """DataTable.clear() clears its list; this one follows `rows`."""


class OneLineTable(DataTable):
    """DataTable for fixed-width columns and one-line rows (see the module's docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        # Set before DataTable's own: its set-up may already reach the overrides below.
        self._rows_version = 0
        """Bumped by subclasses whenever the rows or their order change."""
        self._ordered: tuple[int, list[Row], _OneLineOffsets] | None = None
        self._cells_rendered: LRUCache[tuple[Any, ...], tuple[Any, list[list[Segment]]]] = LRUCache(4096)
        # (row index, column index) -> (value, style, width, cursor, hover, segments) while the
        # cell context below stays: a cell is drawn again only when its value or its looks changed.
        self._cell_at: dict[tuple[int, int], tuple[Any, Style, int, bool, bool, list[Segment]]] = {}
        self._cell_context: tuple[Any, ...] = ()
        # (looks of a text, column, styles, width, padding) -> its line without a position's meta.
        self._by_looks: dict[tuple[Any, ...], list[list[Segment]] | None] = {}
        self._styles_with_meta: dict[tuple[Style | None, Style], Style] = {}
        self._line_cache_fast: LRUCache[tuple[Any, ...], Strip] = LRUCache(1000)
        self._cell_meta: dict[tuple[int, int], Style] = {}  # what a click on a cell reports
        self._extend_meta: dict[int, Style] = {}  # and on the rest of a row's line
        self._frame: dict[Any, Any] | None = None  # what a frame looks up once, while it is rendered
        super().__init__(**kwargs)
        self.fast_cells = True
        """Lines drawn by the code below; False: by DataTable's own (same segments, slower)."""

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cells_rendered.clear()
        self._cell_at.clear()
        self._line_cache_fast.clear()
        self._by_looks.clear()

    # -- where rows are ---------------------------------------------------------------------------------
    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        # Every column has a fixed width and every row is one line without a label: DataTable would
        # render each cell of each new row to measure widths it then ignores (seconds for 10,000 rows).
        if not any(column.auto_width for column in self.columns.values()):
            new_rows = ()
        super()._update_dimensions(new_rows)

    def _rows_in_order(self) -> tuple[list[Row], _OneLineOffsets]:
        # DataTable rebuilds both lists, O(rows), whenever any cell changes; here only when rows do.
        if self._ordered is None or self._ordered[0] != self._rows_version:
            rows = list(self.rows.values())  # built in the order shown
            self._ordered = (self._rows_version, rows, _OneLineOffsets(rows))
        return self._ordered[1], self._ordered[2]

    @property
    def ordered_rows(self) -> list[Row]:
        return self._rows_in_order()[0]

    @property
    def _y_offsets(self) -> _OneLineOffsets:  # type: ignore[override]
        return self._rows_in_order()[1]

    def _row_y(self, row_index: int) -> int:
        return row_index + (self.header_height if self.show_header else 0)

    def _get_row_region(self, row_index: int) -> Region:
        # DataTable sums the heights of every row above (O(rows) per cursor move).
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(column.get_render_width(self) for column in self.columns.values())
        width += self._row_label_column_width
        return Region(0, self._row_y(row_index), max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        columns = self.ordered_columns
        x = sum(column.get_render_width(self) for column in columns[:column_index])
        x += self._row_label_column_width
        return Region(x, self._row_y(row_index), columns[column_index].get_render_width(self), 1)

    # -- lines ------------------------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = {}
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _once(self, key: Any, make: Any) -> Any:
        """`make()`, computed once per frame while one is rendered (every time otherwise)."""
        frame = self._frame
        if frame is None:
            return make()
        if key not in frame:
            frame[key] = make()
        return frame[key]

    def _component_style(self, name: str) -> Style:
        return self._once(name, lambda: self.get_component_styles(name).rich_style)

    def notify_style_update(self) -> None:
        # A theme or CSS change restyles the cursor and the rows: DataTable clears its caches here.
        self._cells_rendered.clear()
        self._cell_at.clear()
        self._line_cache_fast.clear()
        self._by_looks.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        if not self.fast_cells or self.fixed_rows:
            return super().render_line(y)
        frame: LineFrame = self._once("line frame", self._line_frame)
        if y < frame.header or not self._lean_rows():
            if y >= frame.header:
                y += frame.scroll_y
            return self._render_line(y, frame.scroll_x, frame.scroll_x + frame.width, frame.base_style)
        row_index = y + frame.scroll_y - frame.header
        rows = self.ordered_rows
        if row_index >= len(rows):
            return Strip.blank(frame.width, frame.base_style)
        return self._data_line(rows[row_index].key, row_index, frame)

    def _lean_rows(self) -> bool:
        """True when data lines are drawn here: a row cursor and no row labels (the overview's)."""
        return self.cursor_type == "row" and not (self._labelled_row_exists and self.show_row_labels)

    def _line_frame(self) -> LineFrame:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cell_context = (
            show_cursor,
            show_hover,
            self._pseudo_class_state,
            self.fixed_columns,
            self.cell_padding,
            self.cursor_foreground_priority,
            self.cursor_background_priority,
            self.zebra_stripes,
        )
        if cell_context != self._cell_context:
            # Every cell rendered under another context (focus, hover shown, theme styles) is stale.
            self._cell_context = cell_context
            self._cell_at.clear()
        widths = tuple(column.get_render_width(self) for column in self.ordered_columns)
        base_style = self.rich_style
        line_context = (width, scroll_x, base_style, widths, self._update_count, cell_context)
        return LineFrame(
            width=width,
            scroll_x=scroll_x,
            scroll_y=scroll_y,
            header=self.header_height if self.show_header else 0,
            base_style=base_style,
            widths=widths,
            fixed=min(self.fixed_columns, len(widths)),
            cursor_row=self.cursor_coordinate.row,
            hover_row=self.hover_coordinate.row,
            cell_context=cell_context,
            line_context=line_context,
        )

    def _data_line(self, row_key: RowKey, row_index: int, frame: LineFrame) -> Strip:
        """A data row's line, as DataTable's `_render_line` draws it for a row cursor."""
        show_cursor = frame.cell_context[0]
        on_cursor, hovered = row_index == frame.cursor_row, row_index == frame.hover_row
        cache_key = (row_key, row_index, on_cursor, hovered, frame.line_context)
        cached = self._line_cache_fast.get(cache_key)
        if cached is not None:
            return cached
        cell = self._cell_segments
        fixed: list[Segment] = []
        widths, fixed_count = frame.widths, frame.fixed
        if fixed_count:
            fixed_style = self._once(
                "fixed", lambda: self._component_style("datatable--fixed") + Style.from_meta({"fixed": True})
            )
            for column_index in range(fixed_count):
                width = widths[column_index]
                join(fixed, cell(row_index, column_index, fixed_style, width, on_cursor, hovered))
        row_style = self._get_row_style(row_index, frame.base_style)
        scrollable: list[Segment] = []
        # The scrolled copies of the fixed columns are not drawn: DataTable crops them away at once.
        for column_index in range(fixed_count, len(widths)):
            width = widths[column_index]
            join(scrollable, cell(row_index, column_index, row_style, width, on_cursor, hovered))
        remaining = max(0, frame.width - sum(widths[fixed_count:]))
        extend_style, _ = self._get_styles_to_render_cell(
            False, False, False, hovered, on_cursor, show_cursor, frame.cell_context[1], False, False
        )
        meta = self._extend_meta.get(row_index)
        if meta is None:  # made once per line: `from_meta` serialises the meta and draws a random id
            if len(self._extend_meta) > 4096:
                self._extend_meta.clear()
            meta = self._extend_meta[row_index] = Style.from_meta(
                {"row": row_index, "column": 0, "out_of_bounds": True}
            )
        extension = Segment(" " * remaining, row_style + extend_style + meta)
        strip = assemble(frame, fixed, scrollable, extension)
        self._line_cache_fast[cache_key] = strip
        return strip

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        if not self.fast_cells or row_index < max(self.fixed_rows, 0):
            return super()._get_row_style(row_index, base_style)
        if self.zebra_stripes:
            return self._component_style("datatable--odd-row" if row_index % 2 else "datatable--even-row")
        return base_style

    # -- cells --------------------------------------------------------------------------------------------
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
        key: tuple[Any, ...] = (row_key, column_key, row_index, base_style, width, cursor, hover)
        key += (self._show_hover_cursor, self._pseudo_class_state, self.fixed_columns)
        cached = self._cells_rendered.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = self._render_one_line(row_index, column_index, value, base_style, width, cursor, hover)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cells_rendered[key] = (value, lines)
        return lines

    def _cell_segments(
        self, row_index: int, column_index: int, style: Style, width: int, cursor: bool, hover: bool
    ) -> list[Segment]:
        """A data cell's line, simplified, drawn again only when its value (object), style, width,
        cursor or hover changed at its position (the cell context is checked once per frame)."""
        place = (row_index, column_index)  # a fixed column is drawn once per line, with the fixed style
        row_key = self._row_locations.get_key(row_index)
        value: Any = self._data[row_key][self._column_locations.get_key(column_index)]  # type: ignore[index]
        cached = self._cell_at.get(place)
        if cached is not None and cached[0] is value and cached[1:5] == (style, width, cursor, hover):
            return cached[5]
        lines = self._render_one_line(row_index, column_index, value, style, width, cursor, hover)
        if lines is None:
            lines = DataTable._render_cell(self, row_index, column_index, style, width, cursor, hover)
        segments = list(Segment.simplify(lines[0]))
        if len(self._cell_at) > 65536:
            self._cell_at.clear()
        self._cell_at[place] = (value, style, width, cursor, hover, segments)
        return segments

    def _render_one_line(
        self,
        row_index: int,
        column_index: int,
        value: Any,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> list[list[Segment]] | None:
        """The cell as DataTable's `_render_cell` renders it, without its layout machinery; None for a
        cell that does not fit on its line (DataTable renders those)."""
        header = row_index < 0
        if value is None or (header and self.header_height != 1) or not self.fast_cells:
            return None
        if isinstance(value, Text):
            text = value
        elif isinstance(value, str) and _plain(value):
            text = Text(value, end="")  # what `from_markup` makes of it, without parsing it
        else:
            formatted = default_cell_formatter(value, wrap=False, height=1)
            if not isinstance(formatted, Text):
                return None
            text = formatted
        component, post = self._get_styles_to_render_cell(
            header,
            False,
            not header and (row_index < self.fixed_rows or column_index < self.fixed_columns),
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        meta = self._cell_meta.get((row_index, column_index))
        if meta is None:
            if len(self._cell_meta) > 4096:
                self._cell_meta.clear()
            meta = self._cell_meta[row_index, column_index] = Style.from_meta(
                {"row": row_index, "column": column_index}
            )
        looks = looks_key(text)
        if looks is None or header:
            pre = base_style + meta + component
            return render_one_line(self.app.console, text, width, self.cell_padding, pre, post)
        # The same text in the same column looks the same in every row but for what a click reports:
        # rendered once, the position's meta added to each segment's style.
        key = (looks, column_index, base_style, component, post, width, self.cell_padding)
        plain = self._by_looks.get(key, _MISSING)
        if plain is _MISSING:
            pre = base_style + component
            plain = render_one_line(self.app.console, text, width, self.cell_padding, pre, post)
            if len(self._by_looks) > 16384:
                self._by_looks.clear()
            self._by_looks[key] = plain
        if plain is None:
            return None
        return [[Segment(text_, self._with_meta(style, meta)) for text_, style, _ in plain[0]]]

    def _with_meta(self, style: Style | None, meta: Style) -> Style:
        """`style + meta`, kept: a frame of new rows adds the same few styles to the same positions."""
        key = (style, meta)
        combined = self._styles_with_meta.get(key)
        if combined is None:
            if len(self._styles_with_meta) > 65536:
                self._styles_with_meta.clear()
            combined = self._styles_with_meta[key] = meta if style is None else style + meta
        return combined
