"""Type-ahead: keys that arrive in one terminal read after `:` or `/` all go to the bar.

A paste, `tmux send-keys` or a fast typist delivers `:models` and Enter in one read. The driver parses
that read and queues every key before the app handles the first one; these tests do the same (the real
xterm parser, every event queued before the loop runs), unlike `pilot.press`, which waits after each key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual._xterm_parser import XTermParser

from mlops_console.tui.app import MlopsConsole
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.audit import AuditScreen
from mlops_console.tui.screens.models import ModelsScreen
from mlops_console.tui.screens.overview import OverviewScreen
from tests import sample
from tests._tui import settle


def burst(app: MlopsConsole, text: str) -> None:
    """What the driver does with one read from the terminal: parse it, queue every key, then yield."""
    parser = XTermParser()
    for event in [*parser.feed(text), *parser.tick()]:
        event.set_sender(app)
        app.post_message(event)


@pytest.fixture
def app(tmp_path: Path) -> MlopsConsole:
    return sample.make_app(tmp_path)


async def _on_firing_alert(app: MlopsConsole, pilot) -> dict:
    """Open the alerts screen with the cursor on fraud-scorer's firing alert; return that alert."""
    store = app.backend.store
    target = next(a for a in store.list_alerts("firing") if a.endpoint == "fraud-scorer")
    await pilot.press("2")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, AlertsScreen)
    screen.table.move_cursor(row=screen.table.get_row_index(str(target.id)))
    await pilot.pause()
    assert screen.selected_alert() == target.id
    return target


def _untouched(app: MlopsConsole, alert_id: int) -> None:
    store = app.backend.store
    alert = store.get_alert(alert_id)
    assert alert.display_state == "firing", alert
    assert not [r for r in store.list_audit() if r.alert_id == alert_id and r.action != "fire"]


@pytest.mark.parametrize(
    ("command", "screen_type"),
    [(":models", ModelsScreen), (":audit", AuditScreen), (":alerts", AlertsScreen)],
)
async def test_command_typed_ahead_goes_to_the_bar_not_the_alert(
    app: MlopsConsole, command: str, screen_type: type
) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        target = await _on_firing_alert(app, pilot)
        burst(app, command + "\r")
        await settle(pilot)
        assert type(app.screen) is screen_type
        assert not app.screen.query_one("#command").display
    _untouched(app, target.id)


async def test_filter_typed_ahead_goes_to_the_filter(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        target = await _on_firing_alert(app, pilot)
        screen = app.screen
        burst(app, "/fraud-scorer")  # f cycles the state, a acks, s silences: none of that may happen
        await settle(pilot)
        assert app.screen is screen
        assert screen.filter_text == "fraud-scorer" and screen.state == "all"
        assert [a.endpoint for a in screen._visible()] == ["fraud-scorer"]
        burst(app, "\r")
        await settle(pilot)
        assert app.focused is screen.table
    _untouched(app, target.id)


async def test_keys_before_the_colon_still_act_on_the_screen(app: MlopsConsole) -> None:
    """Only what follows `:` belongs to the bar: `o` (sort) then `:alerts` in one read does both."""
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        burst(app, "o:alerts\r")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert overview.sort_key == "name"


async def test_colon_and_slash_are_typed_inside_an_open_bar(app: MlopsConsole) -> None:
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        burst(app, "/http://")
        await settle(pilot)
        assert screen.filter_text == "http://"
        assert not screen.query_one("#command").display


async def test_held_keys_are_let_go_when_the_colon_cannot_come_back(app: MlopsConsole) -> None:
    """If the widget `:` went to leaves the screen before it bubbled back, the held keys still act."""
    from textual import events

    from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen

    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        overview = app.screen
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        # `:` reached the detail screen's table and was lost with it; `o` (sort) was typed after it.
        colon = events.Key("colon", ":")
        colon.set_sender(app)
        assert app.typeahead.hold(colon) is False and app.typeahead.opener is colon
        app.pop_screen()
        burst(app, "o")  # held: it came after the opener
        for _ in range(200):  # poll until the hold is let go (the check runs on a timer)
            if overview.sort_key == "name":
                break
            await pilot.pause(0.05)
        assert overview.sort_key == "name"
        assert app.typeahead.opener is None and not app.typeahead.held


async def test_the_bars_show_above_the_footer(app: MlopsConsole) -> None:
    """What is typed into a bar is visible: neither bar hides behind the footer (both dock at the bottom)."""
    from textual.widgets import Footer

    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        burst(app, "/iris\r")  # the filter stays shown while it filters
        await settle(pilot)
        burst(app, ":al")
        await settle(pilot)
        footer = screen.query_one(Footer).region
        command, filter_bar = screen.query_one("#command").region, screen.query_one("#filter").region
        assert command.height == filter_bar.height == 1
        assert not command.overlaps(footer) and not filter_bar.overlaps(footer)
        assert not command.overlaps(filter_bar)
        assert command.bottom <= footer.y and filter_bar.bottom <= footer.y
