"""Models: registered models, their versions (status, aliases, stage, key metrics), compare two,
promote (`p`) or roll back (`r`) through a confirmation dialog."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.text import DASH, clean, fmt_metric, fmt_time, safe_text
from mlops_console.tui.widgets.filter_bar import FilterBar

KEY_METRICS = 3


def _cursor_key(table: DataTable) -> str | None:
    if not table.row_count:
        return None
    try:
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    except Exception:
        return None
    return row_key.value


class ModelsScreen(ConsoleScreen):
    TITLE_TEXT = "Models"
    HELP = (
        "Registered models (left) and the versions of the highlighted one (right), newest first, with "
        "their status, aliases, legacy stage and key run metrics. `tab` switches tables. `space` marks "
        "up to two versions and `c` compares their metrics side by side. `p` promotes the highlighted "
        "version to the model's alias, `r` rolls the alias back to its previous version; both show a "
        "confirmation with the metrics diff and the endpoints that will be redeployed. A promote under "
        "automatic-rollback watch shows the time left under the versions."
    )
    POLL_SECONDS = 30.0

    BINDINGS = [
        Binding("p", "promote", "Promote", id="models.promote", tooltip="Promote the highlighted version"),
        Binding("r", "rollback", "Roll back", id="models.rollback", tooltip="Roll the model's alias back"),
        Binding("space", "mark", "Mark", id="models.mark", tooltip="Mark a version for comparison"),
        Binding("c", "compare", "Compare", id="models.compare", tooltip="Compare two versions' metrics"),
        Binding(
            "ctrl+r",
            "refresh",
            "Refresh",
            id="models.refresh",
            tooltip="Reload from the registry",
            show=False,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.models_table: DataTable = DataTable(id="models", cursor_type="row", zebra_stripes=True)
        self.versions_table: DataTable = DataTable(id="versions", cursor_type="row", zebra_stripes=True)
        self.notice = Static("", id="models-notice")
        self.compare_panel = Static("", id="compare")
        self.models: list[Any] = []
        self.versions: dict[str, list[Any]] = {}
        self.current_model: str | None = None
        self.marked: list[str] = []
        self.filter_text = ""
        self.error: str | None = None
        self.watched: dict[str, Any] = {}
        self.decided: dict[str, Any] = {}
        """The latest automatic-rollback decision of each model, while its watch lasts."""
        """The promotes under automatic-rollback watch, by model (`core.auto_rollback.Window`)."""
        self._versions_subtitle = ""

    def compose_body(self) -> Iterable[Widget]:
        yield self.notice
        with Horizontal(id="models-split"):
            yield self.models_table
            yield self.versions_table
        yield self.compare_panel

    def on_mount(self) -> None:
        self.models_table.add_column("model", key="name", width=22)
        self.models_table.add_column("aliases", key="aliases", width=22)
        self.models_table.border_title = "models"
        self.versions_table.border_title = "versions"
        self.compare_panel.display = False
        self.notice.display = False
        if self.console.settings.auto_rollback:
            self.set_interval(1.0, self._show_watch)

    def focus_main(self) -> None:
        self.models_table.focus()

    # -- loading -----------------------------------------------------------------------------------
    def reload(self) -> None:
        if not self.console.backend.registry_configured:
            self._set_error("no registry configured: set [registry] tracking_uri in the config")
            return
        if not self.models:
            self.models_table.border_subtitle = "loading…"
        self._load_models()

    def action_refresh(self) -> None:
        self.versions.clear()
        self.reload()

    def store_changed(self, what: str) -> None:
        if what == "registry":
            self.versions.clear()
            self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-load")
    def _load_models(self) -> None:
        try:
            models = self.console.backend.registry.list_models()
        except Exception as exc:
            self.app.call_from_thread(self._set_error, str(exc))
            return
        self.app.call_from_thread(self._show_models, models)

    def _set_error(self, message: str) -> None:
        self.error = message
        self.notice.update(safe_text(message, self.console.theme_colors()["down"], limit=300))
        self.notice.display = True
        self.models_table.border_subtitle = "registry unavailable"

    def _show_models(self, models: list[Any]) -> None:
        self.error = None
        self.notice.display = False
        self.models = models
        selected = _cursor_key(self.models_table)
        shown = [m for m in models if self._matches(m)]
        with self.app.batch_update():
            self.models_table.clear()
            for model in shown:
                aliases = ", ".join(f"{alias}→v{version}" for alias, version in sorted(model.aliases.items()))
                self.models_table.add_row(
                    safe_text(model.name, limit=80), safe_text(aliases or DASH, limit=80), key=model.name
                )
            if selected and selected in self.models_table.rows:
                self.models_table.move_cursor(row=self.models_table.get_row_index(selected), animate=False)
        self.models_table.border_subtitle = f"{len(shown)} models" if shown else "no registered models"
        name = _cursor_key(self.models_table)
        if name:
            self._select_model(name)

    def _matches(self, model: Any) -> bool:
        if not self.filter_text:
            return True
        text = " ".join([clean(model.name), *map(clean, model.aliases), *map(clean, model.tags.values())])
        return self.filter_text.lower() in text.lower()

    def _select_model(self, name: str) -> None:
        if name != self.current_model:
            self.marked = []
            self.compare_panel.display = False
        self.current_model = name
        if name in self.versions:
            self._show_versions(name, self.versions[name])
        else:
            self.versions_table.border_title = safe_text(f"versions of {name}", limit=60)
            self.versions_table.border_subtitle = "loading…"
        self._load_versions(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="versions-load")
    def _load_versions(self, name: str) -> None:
        if self.console.settings.auto_rollback:
            self._load_watched()
        try:
            versions = list(self.console.backend.registry.versions(name, max_results=50))
        except Exception as exc:
            self.app.call_from_thread(self._set_error, str(exc))
            return
        self.app.call_from_thread(self._show_versions, name, versions)

    def _load_watched(self) -> None:
        """The promotes under automatic-rollback watch (store reads: call from a worker thread)."""
        from mlops_console.core.auto_rollback import recent_decisions, windows

        settings, store = self.console.settings, self.console.backend.store
        try:
            decided = {d.model: d for d in reversed(recent_decisions(settings, store))}
            watched = {w.model: w for w in windows(settings, store)}
        except Exception:
            return  # the store's own problems are shown by the status line
        self.watched, self.decided = watched, decided

    def _watch_text(self, name: str) -> str:
        window = self.watched.get(name)
        decision = window.decision if window is not None else self.decided.get(name)
        if decision is not None:
            return f"auto-rollback of v{decision.version}: {decision.state.replace('_', ' ')}"
        if window is None:
            return ""
        version = f"v{window.promote.to_version}"
        left = int(window.remaining(self.console.clock()))
        if left <= 0:
            return ""
        return f"auto-rollback: {left // 60}m{left % 60:02d}s left ({version})"

    def _show_watch(self) -> None:
        if self.current_model is None or not self._versions_subtitle:
            return
        if int(self.console.clock()) % 5 == 0:
            self._refresh_watched()
        watch = self._watch_text(self.current_model)
        subtitle = self._versions_subtitle + (f" · {watch}" if watch else "")
        self.versions_table.border_subtitle = safe_text(subtitle, limit=120)

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-watch")
    def _refresh_watched(self) -> None:
        self._load_watched()

    def key_metrics(self, versions: list[Any]) -> list[str]:
        names: dict[str, int] = {}
        for version in versions:
            for metric in version.metrics:
                names[metric] = names.get(metric, 0) + 1
        return sorted(names, key=lambda m: (-names[m], m))[:KEY_METRICS]

    def _show_versions(self, name: str, versions: list[Any]) -> None:
        self.versions[name] = versions
        if name != self.current_model:
            return
        table = self.versions_table
        same_model = getattr(self, "_versions_shown_for", None) == name
        self._versions_shown_for = name
        selected = _cursor_key(table) if same_model else None
        metrics = self.key_metrics(versions)
        colors = self.console.theme_colors()
        now = self.console.clock()
        with self.app.batch_update():
            table.clear(columns=True)
            for key, label, width in (
                ("mark", "", 1),
                ("version", "ver", 4),
                ("status", "status", 8),
                ("aliases", "aliases", 18),
                ("stage", "stage", 10),
                ("created", "created", 13),
            ):
                table.add_column(label, key=key, width=width)
            for metric in metrics:
                table.add_column(
                    safe_text(metric, limit=14), key=f"m:{metric}", width=min(max(len(metric), 7), 14)
                )
            for version in versions:
                status = version.status
                status_text = Text(
                    "ready" if status == "READY" else clean(status).lower().replace("_", " "),
                    style="" if status == "READY" else colors["down"],
                )
                row = [
                    Text("●" if version.version in self.marked else "", style=colors["accent"]),
                    Text(f"v{version.version}", style="bold" if version.aliases else ""),
                    status_text,
                    safe_text(
                        ", ".join(version.aliases) or DASH, colors["up"] if version.aliases else "", limit=60
                    ),
                    safe_text(version.stage or DASH),
                    fmt_time(version.created_at, now),
                    *(
                        Text(fmt_metric(version.metrics[m]) if m in version.metrics else DASH)
                        for m in metrics
                    ),
                ]
                table.add_row(*row, key=version.version)
            if selected and selected in table.rows:
                table.move_cursor(row=table.get_row_index(selected), animate=False)
            else:
                table.move_cursor(row=0, animate=False)
        alias = self.console.settings.alias_for(name)
        table.border_title = safe_text(f"versions of {clean(name, limit=40)} (alias {alias})")
        self._versions_subtitle = f"{len(versions)} versions" if versions else "no versions"
        table.border_subtitle = self._versions_subtitle
        if self.console.settings.auto_rollback:
            self._show_watch()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if event.data_table is self.models_table and key and key != self.current_model:
            self._select_model(key)

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        self.filter_text = event.text
        if self.models:
            self._show_models(self.models)

    # -- selection helpers --------------------------------------------------------------------------
    def selected_version(self) -> Any:
        if not self.current_model:
            return None
        key = _cursor_key(self.versions_table)
        versions = self.versions.get(self.current_model, [])
        if key is None:
            return versions[0] if versions and self.focused is not self.versions_table else None
        return next((v for v in versions if v.version == key), None)

    def current_alias_version(self) -> tuple[str, str | None]:
        model = self.current_model or ""
        alias = self.console.settings.alias_for(model)
        info = next((m for m in self.models if m.name == model), None)
        return alias, (info.aliases.get(alias) if info else None)

    # -- actions ---------------------------------------------------------------------------------
    def action_mark(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        if version.version in self.marked:
            self.marked.remove(version.version)
        else:
            self.marked = [*self.marked, version.version][-2:]
        self._show_versions(self.current_model or "", self.versions.get(self.current_model or "", []))

    def action_compare(self) -> None:
        versions = {v.version: v for v in self.versions.get(self.current_model or "", [])}
        picked = [versions[v] for v in self.marked if v in versions]
        selected = self.selected_version()
        if len(picked) < 2 and selected is not None and selected not in picked:
            picked.append(selected)
        if len(picked) < 2:
            self.notify(
                "mark two versions with space (or mark one and highlight another)", severity="warning"
            )
            return
        a, b = sorted(picked[:2], key=lambda v: int(v.version) if v.version.isdigit() else 0)
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("metric")
        table.add_column(f"v{a.version}", justify="right")
        table.add_column(f"v{b.version}", justify="right")
        table.add_column("Δ", justify="right")
        for metric in sorted(set(a.metrics) | set(b.metrics)):
            old, new = a.metrics.get(metric), b.metrics.get(metric)
            delta = (
                f"{new - old:+.4g}" if isinstance(old, int | float) and isinstance(new, int | float) else ""
            )
            table.add_row(
                safe_text(metric, limit=40),
                Text(fmt_metric(old) if old is not None else DASH),
                Text(fmt_metric(new) if new is not None else DASH),
                Text(delta),
            )
        self.compare_panel.update(table)
        self.compare_panel.border_title = safe_text(
            f"compare {clean(self.current_model, limit=40)} v{a.version} vs v{b.version}"
        )
        self.compare_panel.display = True

    def action_promote(self) -> None:
        from mlops_console.tui.dialogs.confirm_change import open_change_dialog

        version = self.selected_version()
        if version is None or not self.current_model:
            self.notify("highlight a version to promote", severity="warning")
            return
        alias, current = self.current_alias_version()
        open_change_dialog(
            self,
            "promote",
            self.current_model,
            alias=alias,
            version=version.version,
            expect_current=current or "unset",
        )

    def action_rollback(self) -> None:
        from mlops_console.tui.dialogs.confirm_change import open_change_dialog

        if not self.current_model:
            return
        alias, current = self.current_alias_version()
        open_change_dialog(
            self, "rollback", self.current_model, alias=alias, expect_current=current or "unset"
        )
