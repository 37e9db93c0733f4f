"""Overview (home): one row per endpoint, updated in place every snapshot; host panel below.

Only the rows in view are re-rendered when a snapshot arrives: the others are marked out of date and
brought up to date when they scroll into view. Sorting and filtering read the snapshot itself, so
they always see every endpoint's current values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

from mlops_console.core import formatting
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.tui.host import HostSample
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, firing_and_pending, safe_text, sparkline
from mlops_console.tui.widgets.filter_bar import FilterBar
from mlops_console.tui.widgets.host_panel import HostPanel

NARROW_BELOW = 120  # terminal columns
NARROW_WIDTHS = {"name": 16, "version": 5, "p95": 6, "rps": 6, "err": 5, "drift": 5}
"""Narrower cells below `NARROW_BELOW`, so the drift column fits 80 columns beside the others."""
SPARK_WIDTH = 14
REBUILD_AT = 64
"""Removing more rows than this at once rebuilds the table: each `remove_row` costs O(rows)."""
HEALTH_ORDER = {"down": 0, "degraded": 1, "loading": 2, "unknown": 3, "up": 4}


class KeyedText(Text):
    """A Text cell that remembers which row it belongs to (so sorting can look up raw values)."""

    row_key: str = ""


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


class OverviewTable(DataTable):
    """A DataTable that says when the rows in view may have changed (scrolled or resized)."""

    def __init__(self, on_view_changed: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_view_changed = on_view_changed

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._on_view_changed()

    def on_resize(self) -> None:
        self._on_view_changed()

    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        # Every column has a fixed width and every row is one line without a label: DataTable would
        # render each cell of each new row to measure widths it then ignores (seconds for 10,000 rows).
        if not any(column.auto_width for column in self.columns.values()):
            new_rows = ()
        super()._update_dimensions(new_rows)

    def rows_in_view(self) -> list[str]:
        """Keys of the rows on screen (every row is one line high), with a line to spare each side."""
        top = max(int(self.scroll_y) - 1, 0)
        rows = self.ordered_rows[top : top + self.size.height + 2]
        return [row.key.value for row in rows if row.key.value is not None]


class OverviewScreen(ConsoleScreen):
    TITLE_TEXT = "Overview"
    HELP = (
        "Every configured endpoint, updated live. Health reads without colour: ● up, ◐ degraded, "
        "✖ down, ? unknown. `want` is the version the registry alias points to, `serves` what the "
        "endpoint reports (≠ marks a mismatch). Latency percentiles come from the endpoint's metrics "
        "when it has them, else from probes; while an endpoint is down they show \u2013 (the last values are "
        "in its detail). ⚑N: N alerts firing; ⚐N: N conditions holding that fire once their `for` "
        "has elapsed (pending). `drift`: ⚠N/M when N of M input features drift (the dataset drifts), "
        "N/M below that share, ok, … before a verdict, \u2013 without an inference log."
    )

    BINDINGS = [
        Binding(
            "enter", "open", "Open", id="overview.open", tooltip="Endpoint detail: charts, errors, alerts"
        ),
        Binding("o", "sort", "Sort", id="overview.sort", tooltip="Sort by the next column"),
        Binding("O", "reverse", "Reverse", id="overview.reverse", tooltip="Reverse the sort order"),
        Binding("a", "app.switch_mode('alerts')", "Alerts", id="overview.alerts", tooltip="Alerts screen"),
        Binding("m", "app.switch_mode('models')", "Models", id="overview.models", tooltip="Models screen"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.table = OverviewTable(
            self._update_rows_in_view, id="endpoints", cursor_type="row", zebra_stripes=True
        )
        self.table.fixed_columns = 2
        self.host_panel = HostPanel(id="host")
        self.narrow: bool | None = None
        self.filter_text = ""
        self.sort_key = "health"
        self.sort_reverse = False
        self._rows: dict[str, dict[str, Any]] = {}  # row key -> last cell values shown
        self._stale_rows: set[str] = set()  # rows whose cells predate their endpoint's snapshot
        self._sorted_on: dict[str, Any] = {}  # row key -> (sort column, its sort value) last sorted on
        self._snapshots: dict[str, EndpointSnapshot] = {}
        self._haystacks: dict[tuple[str | None, ...], str] = {}
        self._intervals: tuple[Any, dict[str, float]] | None = None  # (settings, name -> interval)

    def compose_body(self) -> Iterable[Widget]:
        yield self.table
        yield self.host_panel

    def on_mount(self) -> None:
        self.host_panel.show(self.console.host_sample)

    def focus_main(self) -> None:
        self.table.focus()

    def on_resize(self) -> None:
        self._ensure_columns()
        if self.console.snapshot is not None:
            self.show_snapshot(self.console.snapshot)

    def show_host(self, sample: HostSample) -> None:
        self.host_panel.show(sample, max_procs=2 if self.narrow else 6)

    # -- rendering -------------------------------------------------------------------------------
    def _columns(self) -> list[Column]:
        return [c for c in COLUMNS if c.narrow] if self.narrow else [c for c in COLUMNS if c.key != "version"]

    def _ensure_columns(self) -> bool:
        """(Re)create the columns when the width class changed; True if it did."""
        narrow = self.size.width < NARROW_BELOW if self.size.width else False
        if narrow == self.narrow:
            return False
        self.narrow = narrow
        self.table.clear(columns=True)
        self._rows.clear()
        self._stale_rows.clear()
        self._sorted_on.clear()
        for column in self._columns():
            width = NARROW_WIDTHS.get(column.key, column.width) if narrow else column.width
            self.table.add_column(self._label(column), key=column.key, width=width)
        return True

    def _label(self, column: Column) -> Text:
        if column.key != self.sort_key:
            return Text(column.label)
        return Text(column.label + ("▲" if not self.sort_reverse else "▼"), style="bold")

    def _relabel(self) -> None:
        for column in self._columns():
            table_column = self.table.columns.get(column.key)  # type: ignore[call-overload]
            if table_column is not None:
                table_column.label = self._label(column)
        self.table.refresh()

    def _cells(self, e: EndpointSnapshot, now: float) -> dict[str, Any]:
        app = self.console
        colors = app.theme_colors()
        name = KeyedText(end="")
        name.row_key = e.name
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

    def _interval(self, name: str) -> float:
        settings = self.console.settings
        if self._intervals is None or self._intervals[0] is not settings:
            self._intervals = (settings, {e.name: e.interval for e in settings.endpoints})
        return self._intervals[1].get(name, 5.0)

    def _matches(self, e: EndpointSnapshot) -> bool:
        if not self.filter_text:
            return True
        fields = (e.name, e.model, e.alias, e.health, e.url, e.served_version, e.expected_version)
        haystack = self._haystacks.get(fields)
        if haystack is None:
            if len(self._haystacks) > 4 * max(len(self._snapshots), 1000):
                self._haystacks.clear()  # endpoints came and went: drop the ones gone
            haystack = " ".join(clean(v) for v in fields if v).lower()
            self._haystacks[fields] = haystack
        return self.filter_text.lower() in haystack

    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        """Update the table in place: rows added/removed as needed; only the cells in view re-rendered."""
        if not self.is_mounted:
            return
        self._ensure_columns()
        table = self.table
        self._snapshots = {e.name: e for e in snapshot.endpoints}
        wanted = [e for e in snapshot.endpoints if self._matches(e)]
        keys = {e.name for e in wanted}
        previous_keys = set(self._rows)
        gone = [k for k in self._rows if k not in keys]
        sort_column = self._sort_column()
        with self.app.batch_update():
            order_changed = False
            if len(gone) > REBUILD_AT:
                selected = self.selected_endpoint()
                table.clear()
                self._rows.clear()
                self._sorted_on.clear()
                self._stale_rows.clear()
            else:
                selected = None
                for key in gone:
                    table.remove_row(key)
                    del self._rows[key]
                    self._sorted_on.pop(key, None)
                    self._stale_rows.discard(key)
            for e in wanted:
                if e.name not in self._rows:
                    self._add_row(e)
                    order_changed = True
                sorted_on = (sort_column.key, sort_column.sort(e))
                if self._sorted_on.get(e.name) != sorted_on:
                    self._sorted_on[e.name] = sorted_on
                    order_changed = True
            self._stale_rows.update(keys)
            if order_changed:
                self._sort(keep_selection=bool(previous_keys), selected=selected)
            self._update_rows_in_view()
        if not self.table.row_count:
            self.table.border_subtitle = (
                "no endpoints match the filter" if self.filter_text else "no endpoints"
            )
        else:
            self.table.border_subtitle = (
                safe_text(f"{len(wanted)}/{len(snapshot.endpoints)} match “{self.filter_text}”")
                if self.filter_text
                else ""
            )

    def _add_row(self, e: EndpointSnapshot) -> None:
        """A row whose cells are filled in when it comes into view; its name cell serves sorting."""
        name = KeyedText(clean(e.name, limit=40), end="")
        name.row_key = e.name
        cells: dict[str, Any] = {c.key: "" for c in self._columns()}
        cells["name"] = name
        self.table.add_row(*cells.values(), key=e.name)
        self._rows[e.name] = cells
        self._stale_rows.add(e.name)

    def _update_rows_in_view(self) -> None:
        """Bring the rows on screen up to date with their endpoints' latest snapshot."""
        if not self._stale_rows or not self.is_mounted:
            return
        table = self.table
        now = self.console.clock()
        columns = [c.key for c in self._columns()]
        for key in table.rows_in_view():
            if key not in self._stale_rows:
                continue
            self._stale_rows.discard(key)
            e = self._snapshots.get(key)
            previous = self._rows.get(key)
            if e is None or previous is None:
                continue
            cells = self._cells(e, now)
            for column in columns:
                if cells[column] != previous[column]:
                    table.update_cell(key, column, cells[column])
            self._rows[key] = cells

    def _sort_column(self) -> Column:
        return next((c for c in COLUMNS if c.key == self.sort_key), COLUMNS[0])

    def _sort(self, keep_selection: bool = True, selected: str | None = None) -> None:
        column = self._sort_column()
        selected = selected or self.selected_endpoint()
        snapshots = self._snapshots

        def key(cell: Any) -> Any:
            e = snapshots.get(getattr(cell, "row_key", ""))
            return (column.sort(e), e.name) if e else ((), "")

        self.table.sort("name", key=key, reverse=self.sort_reverse)
        if keep_selection and selected and selected in self._rows:
            self.table.move_cursor(row=self.table.get_row_index(selected), animate=False)
        self._update_rows_in_view()

    def selected_endpoint(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:
            return None
        return row_key.value

    # -- actions ---------------------------------------------------------------------------------
    def action_open(self) -> None:
        name = self.selected_endpoint()
        if name:
            self.console.open_endpoint(name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.console.open_endpoint(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value or "health"
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, False
        self._resort()

    def action_sort(self) -> None:
        keys = [c.key for c in self._columns() if c.key != "spark"]
        index = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key = keys[(index + 1) % len(keys)]
        self.sort_reverse = False
        self._resort()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        self._resort()

    def _resort(self) -> None:
        self._relabel()
        if self._rows:
            self._sort()
        label = next((c.label for c in COLUMNS if c.key == self.sort_key), self.sort_key)
        self.notify(f"sorted by {label}{' (reversed)' if self.sort_reverse else ''}", timeout=2)

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.filter_text = event.text
        if self.console.snapshot is not None:
            self.show_snapshot(self.console.snapshot)

    def palette_actions(self) -> list[tuple[str, str, str]]:
        actions = super().palette_actions()
        for column in self._columns():
            if column.key != "spark":
                actions.append(
                    (
                        f"overview: sort by {column.label}",
                        "Sort the endpoints table",
                        f"sort_by('{column.key}')",
                    )
                )
        return actions
