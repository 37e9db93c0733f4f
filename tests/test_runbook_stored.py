"""The runbook is stored with the alert when it fires: its pages, `alerts show` and the console agree,
and editing the config later does not rewrite past alerts. Alerts stored before that keep the config's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from mlops_console.cli import main
from mlops_console.config import Settings, load_settings
from mlops_console.core.alerts import AlertBook, alert_messages
from mlops_console.core.conditions import Condition
from mlops_console.core.store import NewAlert, Store
from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
from tests.test_runbooks import _app, settle

OLD = "https://wiki.example/runbooks/old"
NEW = "https://wiki.example/runbooks/new"


def config(tmp_path: Path, runbook: str | None) -> Path:
    path = tmp_path / "c.toml"
    line = f'runbook = "{runbook}"\n' if runbook else ""
    path.write_text(
        f'[store]\npath = "{tmp_path / "c.db"}"\n\n'
        f'[[endpoints]]\nname = "iris-prod"\nurl = "http://127.0.0.1:5001"\n{line}\n'
        '[[notifications]]\nurl = "json://127.0.0.1:9/hook"\n'
    )
    return path


def fire(settings: Settings, store: Store) -> int:
    book = AlertBook(settings)
    condition = Condition("down", "iris-prod", True, "critical", 0.0, 3, 2, "down", interval=1.0)
    for write in book.evaluate(condition):
        write(store)
    [alert] = store.list_alerts()
    return alert.id


def shown(tmp_path: Path, path: Path, alert_id: int, capsys: pytest.CaptureFixture[str]) -> str | None:
    assert main(["--config", str(path), "alerts", "show", str(alert_id), "--json"]) == 0
    runbook: str | None = json.loads(capsys.readouterr().out)["runbook"]
    return runbook


@pytest.mark.parametrize(("at_fire", "later"), [(OLD, NEW), (None, NEW), (OLD, None)])
def test_a_config_edit_does_not_rewrite_the_runbook_of_an_alert_already_fired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at_fire: str | None, later: str | None
) -> None:
    settings = load_settings(config(tmp_path, at_fire))
    store = Store(settings.store.path)
    alert_id = fire(settings, store)
    [page] = store.notifications_for(alert_id)
    assert (f"Runbook: {at_fire}" in page.body) == bool(at_fire)
    edited = config(tmp_path, later)
    assert shown(tmp_path, edited, alert_id, capsys) == at_fire
    [reminder] = alert_messages(load_settings(edited), "reminder", store.get_alert(alert_id))
    assert (f"Runbook: {at_fire}" in reminder.body) == bool(at_fire)
    assert later is None or f"Runbook: {later}" not in reminder.body


def test_an_alert_stored_before_runbooks_were_stored_takes_the_configs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, NEW)
    store = Store(tmp_path / "c.db")
    alert_id = store.open_alert(NewAlert("fp", "down", "iris-prod", "critical", "down", time.time()), [])
    assert store.get_alert(alert_id).runbook is None
    assert shown(tmp_path, path, alert_id, capsys) == NEW


async def test_the_footer_offers_o_runbook_only_for_an_alert_with_one(tmp_path: Path) -> None:
    opened: list[str] = []
    app = _app(tmp_path, opened)
    store = app.backend.store
    with_book = store.open_alert(
        NewAlert("fp1", "down", "fraud-scorer", "critical", "down", time.time(), runbook=OLD), []
    )
    without = store.open_alert(
        NewAlert("fp2", "down", "fraud-scorer", "critical", "down", time.time(), runbook=""), []
    )
    async with app.run_test(size=(160, 48)) as pilot:
        for alert_id, offered in ((with_book, True), (without, False)):
            app.push_screen(AlertTimelineScreen(alert_id))
            await settle(pilot)
            keys = [key.description for key in app.screen.query(FooterKey)]
            assert ("Runbook" in keys) == offered, keys
            await pilot.press("o")
            await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
    assert opened == [OLD]
