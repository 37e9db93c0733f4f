"""Pilot tests: `:report` shows the shift report (read in a worker, escaped, span changeable), and
`:maintenance` opens, lists and ends maintenance windows, refused in a read-only console."""

from __future__ import annotations

import time
from pathlib import Path

from mlops_console.core.store import NewAlert, Store
from mlops_console.tui.screens.report import ReportScreen
from tests import sample
from tests.test_tui_app import settle

EVIL = "[bold red]evil[/] \x1b[31mred"


def seed(root: Path) -> None:
    """An alert that fired an hour ago on an endpoint with a hostile name, and a running window."""
    store = Store(root / "console.db")
    alert = NewAlert("fp-evil", "down", EVIL, "critical", "down", time.time() - 3600)
    store.open_alert(alert, [])
    store.start_maintenance("iris-*", 7200, "ops", "[red]db[/] move \x07")


async def test_report_screen_shows_the_shift_escaped_and_changes_its_span(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    seed(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"report", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReportScreen) and screen.span == "12h"
        assert "1 alerts fired, 0 paged" in screen.text
        assert "[bold red]evil[/] \\x1b[31mred" in screen.text and "\x1b" not in screen.text
        assert "[red]db[/] move \\x07" in screen.text
        rendered = str(screen.body.render())
        assert "[bold red]evil[/]" in rendered, "shown as written, not taken as markup"
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(pilot)
        assert screen.span == "1h" and "0 alerts fired" in screen.text, "the alert fired just over 1h ago"
        assert screen.query_one("#report").border_title == "shift report: last 1h"
        await pilot.press("colon", *"report 3h", "enter")
        await settle(pilot)
        assert app.screen is screen and screen.span == "3h" and "1 alerts fired" in screen.text
        await pilot.press("colon", *"report soon", "enter")
        await settle(pilot)
        assert app.screen is screen and screen.span == "3h", "a bad span is refused, the report stays"


async def test_maintenance_command_opens_and_ends_a_window(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path)
    store = Store(tmp_path / "console.db")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"maintenance iris-* 2h kernel upgrade", "enter")
        await settle(pilot)
        [window] = store.maintenance_windows(time.time())
        assert (window.pattern, window.created_by, window.reason) == (
            "iris-*",
            "tester@console",
            "kernel upgrade",
        )
        assert window.ends_at - window.created_at == 7200
        await pilot.press("colon", *"maintenance iris-* 90d", "enter")
        await settle(pilot)
        assert len(store.maintenance_windows(time.time())) == 1, "longer than 30 days is refused"
        await pilot.press("colon", *f"maintenance end {window.id}", "enter")
        await settle(pilot)
        assert store.maintenance_windows(time.time()) == []
        assert store.maintenance_window(window.id).ended_by == "tester@console"


async def test_a_read_only_console_cannot_open_a_window(tmp_path: Path) -> None:
    app = sample.make_app(tmp_path, read_only=True)
    store = Store(tmp_path / "console.db")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"maintenance iris-* 2h upgrade", "enter")
        await settle(pilot)
        assert store.maintenance_windows(None) == []
        assert [a.action for a in store.list_audit(action="maintenance")] == []


async def test_the_alerts_screen_marks_alerts_under_a_window(tmp_path: Path) -> None:
    from tests.test_tui_app import rows

    app = sample.make_app(tmp_path)
    store = Store(tmp_path / "console.db")
    covered = store.open_alert(NewAlert("fp-c", "down", "iris-canary", "critical", "down", time.time()), [])
    other = store.open_alert(NewAlert("fp-o", "down", "xiris-canary", "critical", "down", time.time()), [])
    window = store.start_maintenance("iris-*", 3600, "ops")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        shown = {r[2]: r for r in rows(app.screen.table)}
        assert f"maintenance #{window.id}" in shown[str(covered)]
        assert not any("maintenance" in cell for cell in shown[str(other)])
