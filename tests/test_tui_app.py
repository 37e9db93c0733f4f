"""Pilot tests: drive the real console over sample data (sqlite store, fixed clock, static snapshot)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.dialogs.ack import AckDialog
from mlops_console.tui.dialogs.confirm_change import ChangeDialog
from mlops_console.tui.dialogs.silence import SilenceDialog
from mlops_console.tui.messages import SnapshotReceived
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from mlops_console.tui.screens.help import HelpScreen
from mlops_console.tui.screens.models import ModelsScreen
from mlops_console.tui.screens.overview import OverviewScreen
from tests import sample
from tests._tui import rows, settle


async def palette_pick(pilot, typed: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Type into the command palette and choose its first hit once that hit is `expected`."""
    from textual.command import CommandList

    await pilot.press("ctrl+p", *typed)
    for _ in range(200):  # the palette searches in a worker: poll until the hit is listed
        options = pilot.app.screen.query(CommandList)
        if (
            options
            and options.first().option_count
            and expected in str(options.first().get_option_at_index(0).prompt)
        ):
            break
        await pilot.pause(0.05)
    await pilot.press("enter")


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


async def test_overview_shows_every_endpoint_and_counts(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        table = screen.table
        assert table.row_count == 6
        first = rows(table)[0]
        assert first[0] == "✖ down" and first[1].startswith("fraud-scorer")  # sorted by health, worst first
        status = app.status_text().plain
        assert "1 down" in status and "2 firing" in status and "registry ok" in status
        mismatch = next(r for r in rows(table) if r[1].startswith("iris-prod"))
        assert "≠2" in mismatch


async def test_markup_and_escapes_in_data_are_shown_literally(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        shown = rows(app.screen.table)
        evil = next(r for r in shown if r[1] == "[red]markup-ep")
        assert evil[2].startswith("[bold red]evil[/] red")
        assert not any("\x1b" in cell for row in shown for cell in row)
        await pilot.press("3")
        await settle(pilot)
        models = rows(app.screen.models_table)
        assert models[0][0] == "[bold red]evil[/] red"


async def test_filter_hides_and_restores_rows(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"iris")
        await pilot.pause()
        assert app.screen.table.row_count == 2
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.table.row_count == 6


async def test_sort_cycles_columns_and_keeps_the_selection(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("down")  # diabetes-prod
        await pilot.press("o")  # sort by endpoint name
        await pilot.pause()
        assert screen.sort_key == "name"
        names = [r[1] for r in rows(screen.table)]
        assert names[0] == "[red]markup-ep" and names[1].startswith("diabetes-prod")
        assert screen.selected_endpoint() == "diabetes-prod"
        await pilot.press("O")
        await pilot.pause()
        assert [r[1] for r in rows(screen.table)] == names[::-1]


async def test_snapshot_updates_cells_in_place(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.table
        added = []
        original = table.add_row
        table.add_row = lambda *a, **k: added.append(a) or original(*a, **k)  # type: ignore[method-assign]
        snap = sample.snapshot()
        endpoints = list(snap.endpoints)
        endpoints[1] = dataclasses.replace(endpoints[1], p95=0.5)
        snap = dataclasses.replace(snap, endpoints=endpoints)
        app.post_message(SnapshotReceived(snap))
        await pilot.pause()
        assert added == []
        assert table.get_cell("iris-staging", "p95") == "500ms"


async def test_command_bar_navigates(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"alerts", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        assert "iris-prod" in str(app.screen.summary.render())
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("colon", *"nonsense", "enter")
        await pilot.press("colon", "q", "enter")
        await pilot.pause()
    assert app.return_code == 0


async def test_enter_opens_endpoint_detail(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen)
        assert screen.endpoint_name == "fraud-scorer"
        errors = str(screen.errors.render())
        assert "[bold red]evil[/]" in errors and "\x1b" not in errors
        assert screen.alerts_table.row_count == 1


async def test_ack_from_alerts_screen_reaches_the_store(app: MlopsConsole) -> None:
    store = app.backend.store
    target = next(a for a in store.list_alerts("firing") if a.endpoint == "fraud-scorer")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        screen.table.move_cursor(row=screen.table.get_row_index(str(target.id)))
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AckDialog)
        await pilot.press(*"on it", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
    alert = store.get_alert(target.id)
    assert alert.state == "acknowledged"
    assert alert.acked_by == "tester@console" and alert.ack_note == "on it"
    mine = [r for r in store.list_audit(action="ack") if r.actor == "tester@console"]
    assert [r.alert_id for r in mine] == [target.id]


async def test_silence_from_alerts_screen(app: MlopsConsole) -> None:
    store = app.backend.store
    target = next(a for a in store.list_alerts("firing") if a.endpoint == "fraud-scorer")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        screen.table.move_cursor(row=screen.table.get_row_index(str(target.id)))
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SilenceDialog)
        await pilot.press("2")  # 1h
        await settle(pilot)
    alert = store.get_alert(target.id)
    assert alert.display_state == "silenced"
    assert 3500 < alert.silenced_until - time.time() <= 3600


async def test_alert_after_a_promote_offers_rollback(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        shown = rows(app.screen.table)
        mismatch = next(r for r in shown if r[4].startswith("version_mis"))
        assert mismatch[8].startswith("promote v2→v3 5m before")
        app.screen.table.move_cursor(row=[r[4] for r in shown].index(mismatch[4]))
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ChangeDialog)
        assert app.screen.action == "rollback" and app.screen.model == "iris"
        await pilot.press("escape")


async def test_alert_timeline(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.table
        table.move_cursor(row=[r[3] for r in rows(table)].index("fraud-scorer"))
        await pilot.press("enter")
        await settle(pilot)
        events = rows(app.screen.table)
        assert [e[1] for e in events] == ["▲ fired", "✉ notified", "✉ delivery failed", "✉ notified"]
        assert "HTTP 500 from PagerDuty" in events[2][3]


async def test_read_only_removes_write_actions(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "READ-ONLY" in app.status_text().plain
        await pilot.press("2")
        await settle(pilot)
        keys = {b.binding.action for b in app.active_bindings.values() if b.enabled}
        assert "ack" not in keys and "silence" not in keys
        await pilot.press("a", "s", "R")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        titles = [t for t, _, _ in app.screen.palette_actions()]
        assert not any("ack" in t or "silence" in t for t in titles)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("p", "r")
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)
    assert app.backend.store.list_audit(action="ack") == [] or all(
        r.actor != "tester@console" for r in app.backend.store.list_audit(action="ack")
    )


async def test_palette_offers_only_valid_actions(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        titles = [t for t, _, _ in app.screen.palette_actions()]
        assert "alerts: ack" in titles and "alerts: silence" in titles
        # the selected alert (newest) followed a promote, so the rollback offer is valid
        assert "alerts: roll back change" in titles
        app.screen.table.move_cursor(row=app.screen.table.row_count - 1)
        await pilot.pause()
        titles = [t for t, _, _ in app.screen.palette_actions()]
        assert "alerts: roll back change" not in titles


async def test_keymap_from_config_remaps_bindings(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    app.settings.tui.keymap = {"alerts.ack": "k"}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, AckDialog)


async def test_help_shows_the_screen_keys(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, AlertsScreen)


async def test_models_compare_two_versions(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        await pilot.press("down", "down")  # iris
        await settle(pilot)
        assert screen.current_model == "iris"
        await pilot.press("tab")
        assert app.focused is screen.versions_table
        await pilot.press("space", "down", "space", "c")
        await pilot.pause()
        assert screen.marked == ["3", "2"]
        assert screen.compare_panel.display


async def test_registry_unreachable_is_shown_and_the_rest_keeps_working(tmp_path: Path) -> None:
    class Down:
        def list_models(self):
            raise RuntimeError("registry unreachable: connection refused")

    app = sample.make_app(tmp_path, registry=Down())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        assert "registry unreachable" in str(app.screen.notice.render())
        await pilot.press("1")
        await settle(pilot)
        assert app.screen.table.row_count == 6


async def test_following_another_watcher_is_shown(tmp_path: Path) -> None:
    from mlops_console.tui.sources import StaticSource

    snap = dataclasses.replace(sample.snapshot(), owner="pid 4711 on opsbox")
    app = sample.make_app(tmp_path, snapshot_source=StaticSource(snap))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "following pid 4711 on opsbox" in app.status_text().plain


async def test_narrow_terminal_collapses_columns(app: MlopsConsole) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = [c.value for c in app.screen.table.columns]
        assert keys == ["health", "name", "version", "p95", "rps", "err", "drift", "last_ok"]


async def test_command_palette_provider_navigates(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await palette_pick(pilot, "go: audit", "go: audit")
        await settle(pilot)
        assert app.current_mode == "audit"


def test_first_frame_path_imports_no_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlops_console.tui.app; "
        "heavy = ('mlflow', 'sqlite_utils', 'pandas', 'numpy', 'scipy', 'textual_plotext'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_a_failing_worker_is_reported_literally(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)

        def boom(*args, **kwargs):
            raise RuntimeError("database is locked [bold]x[/]")

        app.backend.store.list_audit = boom  # type: ignore[method-assign]
        await pilot.press("4")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert "RuntimeError: database is locked [bold]x[/]" in messages
        await pilot.press("1")
        await settle(pilot)
        assert app.screen.table.row_count == 6


async def test_stalled_engine_is_shown_in_the_status_bar(tmp_path: Path) -> None:
    from mlops_console.core.snapshot import EngineHealth
    from mlops_console.tui.sources import StaticSource

    health = EngineHealth("stalled", "pid 4711 on opsbox: no store update for 40 s")
    snap = dataclasses.replace(sample.snapshot(), owner="pid 4711 on opsbox", engine=health)
    app = sample.make_app(tmp_path, snapshot_source=StaticSource(snap))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        status = app.status_text().plain
        assert "engine stalled: pid 4711 on opsbox: no store update for 40 s" in status


async def test_audit_filter_narrows_the_trail(app: MlopsConsole) -> None:
    """`/` on the audit screen filters by text, as on every other screen."""
    from mlops_console.tui.screens.audit import AuditScreen

    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AuditScreen) and screen.table.row_count == 4
        await pilot.press("slash", *"carol")
        await settle(pilot)
        assert [row[1] for row in rows(screen.table)] == ["carol@ops"]
        assert screen.shown_action == "all"


async def test_alert_ages_under_a_minute_move_on_the_next_poll(tmp_path: Path) -> None:
    now = [sample.T0]
    app = sample.make_app(tmp_path, clock=lambda: now[0])
    store = app.backend.store
    young = store.list_alerts("firing")[0]
    now[0] = young.started_at + 11
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        col = [str(c.value) for c in screen.table.columns].index("age")

        def age() -> str:
            return rows(screen.table)[screen.table.get_row_index(str(young.id))][col]

        assert age() == "11s"
        now[0] += 20  # what the screen's 3 s poll does, 20 seconds later
        screen.reload()
        await settle(pilot)
        assert age() == "31s"


class ChaosRecorder:
    """Stands in for the demo environment's chaos controls, which need the demo's servers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __getattr__(self, method: str):  # type: ignore[no-untyped-def]
        return lambda endpoint, *args: self.calls.append((method, endpoint, *args))


async def test_palette_finds_the_demo_chaos_by_typing_chaos(tmp_path: Path) -> None:
    recorder = ChaosRecorder()
    app = sample.make_app(tmp_path, demo=recorder)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await palette_pick(pilot, "chaos fail fraud", "chaos: fail fraud-scorer")
        await settle(pilot)
    assert recorder.calls == [("fail", "fraud-scorer", 0.3)]
