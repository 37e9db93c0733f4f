"""Overview (home): one row per endpoint, updated in place every snapshot; host panel below.

The table itself (what is rendered when, sorting, filtering) is `EndpointTable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.tui.host import HostSample
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.widgets.endpoint_columns import COLUMNS, Column
from mlops_console.tui.widgets.endpoint_table import EndpointTable
from mlops_console.tui.widgets.host_panel import HostPanel

NARROW_BELOW = 120  # terminal columns


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
        self.table = EndpointTable(id="endpoints", cursor_type="row", zebra_stripes=True)
        self.table.fixed_columns = 2
        self.host_panel = HostPanel(id="host")

    @property
    def narrow(self) -> bool | None:
        return self.table.narrow

    @property
    def filter_text(self) -> str:
        return self.table.filter_text

    @property
    def sort_key(self) -> str:
        return self.table.sort_key

    @property
    def sort_reverse(self) -> bool:
        return self.table.sort_reverse

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

    def _columns(self) -> list[Column]:
        return self.table.columns_shown()

    def _ensure_columns(self) -> bool:
        """(Re)create the columns when the width class changed; True if it did."""
        return self.table.set_narrow(self.size.width < NARROW_BELOW if self.size.width else False)

    def show_snapshot(self, snapshot: EngineSnapshot) -> None:
        if not self.is_mounted:
            return
        self._ensure_columns()
        with self.app.batch_update():
            self.table.show(snapshot)

    def selected_endpoint(self) -> str | None:
        return self.table.selected_endpoint()

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
        self.sort_by(key, not self.sort_reverse if key == self.sort_key else False)

    def action_sort(self) -> None:
        keys = [c.key for c in self._columns() if c.key != "spark"]
        index = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_by(keys[(index + 1) % len(keys)])

    def action_reverse(self) -> None:
        self.sort_by(self.sort_key, not self.sort_reverse)

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.table.sort_by(key, reverse)
        label = next((c.label for c in COLUMNS if c.key == self.sort_key), self.sort_key)
        self.notify(f"sorted by {label}{' (reversed)' if self.sort_reverse else ''}", timeout=2)

    def filter_applier(self) -> Callable[[str], None]:
        # Within the keystroke: its rows are painted in the frame that echoes it (see `FilterBar`).
        return self.table.set_filter

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
